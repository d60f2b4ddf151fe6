// swagger-ui-dist ships no types; this is the part of its bundle's API the /docs page uses.
declare module "swagger-ui-dist/swagger-ui-bundle.js" {
  interface SwaggerUIOptions {
    url: string;
    domNode: HTMLElement;
    deepLinking?: boolean;
    validatorUrl?: string | null;
    presets?: unknown[];
    layout?: string;
  }
  interface SwaggerUIBundleFunction {
    (options: SwaggerUIOptions): unknown;
    presets: { apis: unknown };
  }
  const SwaggerUIBundle: SwaggerUIBundleFunction;
  export default SwaggerUIBundle;
}
