// Entry of the console page: replaces the loading text with the app.
import { render } from "preact";
import { App } from "./app";
import "./styles.css";

const root = document.getElementById("console");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
