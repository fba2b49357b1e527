// Starts Swagger UI with the settings of the page's JSON data block (no inline script: CSP).
"use strict";
(() => {
  const config = JSON.parse(document.getElementById("docs-config").textContent);
  const ui = SwaggerUIBundle({
    url: config.url,
    dom_id: "#swagger-ui",
    // Off: its links sit inside each operation's summary button (axe: nested-interactive, target-size).
    deepLinking: false,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    validatorUrl: null, // the default sends the document to an outside validator
    oauth2RedirectUrl: new URL("docs/oauth2-redirect", window.location.href).href,
  });
  if (config.oauth) {
    ui.initOAuth({
      clientId: config.oauth.clientId,
      scopes: config.oauth.scopes,
      usePkceWithAuthorizationCodeGrant: true,
    });
  }
})();
