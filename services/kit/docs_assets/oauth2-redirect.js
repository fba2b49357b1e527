// The Authorize popup lands here from /auth/authorize: hand the code (or the error) to Swagger UI
// in the window that opened it, then close. Only the authorization code flow exists here.
"use strict";
(() => {
  const oauth2 = window.opener && window.opener.swaggerUIRedirectOauth2;
  if (!oauth2) {
    document.body.textContent = "Open this page through the Authorize button of the API docs.";
    return;
  }
  const query = window.location.search.substring(1) || window.location.hash.substring(1);
  const params = new URLSearchParams(query);
  const auth = oauth2.auth;
  const fail = (message) => oauth2.errCb({ authId: auth.name, source: "auth", level: "error", message });
  if (params.get("state") !== oauth2.state) {
    // Not the answer to the request this page started: never use its code.
    fail("[invalid_state]: the sign-in answer does not belong to this page; authorize again.");
  } else if (params.get("code")) {
    delete oauth2.state;
    auth.code = params.get("code");
    oauth2.callback({ auth, redirectUrl: oauth2.redirectUrl });
  } else {
    const description = params.get("error_description");
    fail(`[${params.get("error") || "no_code"}]` + (description ? `: ${description}` : ": no code received"));
  }
  window.close();
})();
