// The API reference page at /docs: Swagger UI, bundled from swagger-ui-dist, reading the worker's own OpenAPI document.
import "swagger-ui-dist/swagger-ui.css";
import "./docs.css";
import SwaggerUIBundle from "swagger-ui-dist/swagger-ui-bundle.js";

const root = document.getElementById("api-reference");
if (root) {
  root.textContent = "";
  root.removeAttribute("aria-busy");
  SwaggerUIBundle({
    url: "/v1/openapi.json",
    domNode: root,
    deepLinking: true,
    // The public validator badge would call validator.swagger.io: the page talks to its own origin only.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
}
