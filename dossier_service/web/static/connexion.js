/* Cercle — connexion au dossier avec l'identité Matrix.
 *
 * Deux chemins mènent au même échange : un jeton OpenID Matrix est remis au dossier
 * (POST /connexion/openid), qui le vérifie auprès du serveur Matrix puis ouvre la session.
 *  - page seule : connexion au serveur Matrix (/login), demande du jeton
 *    (/user/{userId}/openid/request_token), puis déconnexion de l'appareil temporaire ;
 *  - dans Element (widget) : l'API des widgets fournit le jeton (action get_openid).
 * Le mot de passe ne part que vers le serveur Matrix.
 */
(function () {
  "use strict";
  var form = document.getElementById("connexion-matrix");
  if (!form) { return; }
  var errorBox = document.getElementById("erreur-connexion");
  var widgetBox = document.getElementById("etat-widget");
  var button = document.getElementById("bouton-connexion");
  var csrf = form.querySelector("input[name=csrf_token]").value;
  var next = form.getAttribute("data-suite") || "/patients";
  var elementOrigin = form.getAttribute("data-element-origin") || "";
  var widgetId = form.getAttribute("data-widget-id") || "";

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    button.disabled = false;
    button.textContent = "Se connecter";
  }

  function busy(text) {
    errorBox.hidden = true;
    button.disabled = true;
    button.textContent = text;
  }

  function exchange(openid) {
    return fetch(form.getAttribute("action"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({
        access_token: openid.access_token,
        matrix_server_name: openid.matrix_server_name,
        expires_in: openid.expires_in,
        suite: next
      })
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        if (!resp.ok) {
          throw new Error(body.error || "La connexion au dossier a échoué.");
        }
        return body;
      });
    });
  }

  function matrixError(resp) {
    if (resp.status === 403 || resp.status === 401) { return "Identifiant ou mot de passe incorrect."; }
    if (resp.status === 429) { return "Trop de tentatives : réessayez dans un moment."; }
    return "Le serveur Matrix a refusé la connexion.";
  }

  /* Log in to the homeserver with ``submission`` (password, or the login token that single
   * sign-on hands back), get an OpenID token, exchange it, then log the temporary device out. */
  function loginWith(homeserver, submission) {
    var base = homeserver.replace(/\/+$/, "");
    var session = null;
    submission.initial_device_display_name = "Cercle — connexion au dossier";
    return fetch(base + "/_matrix/client/v3/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(submission)
    }).catch(function () {
      throw new Error("Serveur Matrix injoignable.");
    }).then(function (resp) {
      if (!resp.ok) {  // Cercle's homeserver may say why in French (password policy)
        return resp.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body["fr.cercle.raison"] || matrixError(resp));
        });
      }
      return resp.json();
    }).then(function (body) {
      session = body;
      return fetch(base + "/_matrix/client/v3/user/" + encodeURIComponent(body.user_id) +
                   "/openid/request_token", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + body.access_token },
        body: "{}"
      });
    }).then(function (resp) {
      if (!resp.ok) { throw new Error("Le serveur Matrix n'a pas délivré de jeton d'identité."); }
      return resp.json();
    }).then(function (openid) {
      return exchange(openid);
    }).finally(function () {
      if (session) {  // the temporary device is not needed any more (awaited before leaving)
        return fetch(base + "/_matrix/client/v3/logout", {
          method: "POST", headers: { "Authorization": "Bearer " + session.access_token }
        }).catch(function () {});
      }
      return undefined;
    });
  }

  function loginWithPassword(homeserver, login, password) {
    return loginWith(homeserver, {
      type: "m.login.password", identifier: { type: "m.id.user", user: login }, password: password
    });
  }

  /* ----- single sign-on (Pro Santé Connect, regional portal): the homeserver lists its
   * identity providers; each gets a button that goes through the homeserver's SSO and comes
   * back here with a one-time login token. ----- */
  var ssoBox = document.getElementById("sso");
  var homeserverUrl = (form.getAttribute("data-homeserver") || "").replace(/\/+$/, "");
  function returnUrl() {
    return window.location.origin + "/connexion?suite=" + encodeURIComponent(next);
  }
  if (ssoBox && !widgetId) {
    fetch(homeserverUrl + "/_matrix/client/v3/login").then(function (resp) {
      return resp.ok ? resp.json() : { flows: [] };
    }).then(function (body) {
      (body.flows || []).forEach(function (flow) {
        if (flow.type !== "m.login.sso") { return; }
        (flow.identity_providers || []).forEach(function (idp) {
          var link = document.createElement("a");
          link.className = "bouton sso";
          link.id = "sso-" + idp.id;
          link.textContent = "Se connecter avec " + idp.name;
          link.href = homeserverUrl + "/_matrix/client/v3/login/sso/redirect/" +
            encodeURIComponent(idp.id) + "?redirectUrl=" + encodeURIComponent(returnUrl());
          ssoBox.appendChild(link);
        });
      });
      ssoBox.hidden = !ssoBox.children.length;
    }).catch(function () {});
  }
  var loginToken = new URLSearchParams(window.location.search).get("loginToken");
  if (loginToken) {
    busy("Connexion…");
    loginWith(homeserverUrl, { type: "m.login.token", token: loginToken }).then(function (body) {
      window.location.assign(body.redirect || next);
    }).catch(function (err) {
      showError(err.message === "Identifiant ou mot de passe incorrect."
        ? "La connexion unique a échoué ou votre compte attend sa validation par un administrateur."
        : err.message);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var login = form.elements.identifiant.value.trim();
    var password = form.elements.mot_de_passe.value;
    var homeserver = form.getAttribute("data-homeserver");  // the only one the CSP allows
    if (!login || !password) { showError("Identifiant et mot de passe sont nécessaires."); return; }
    busy("Connexion…");
    loginWithPassword(homeserver, login, password).then(function (body) {
      window.location.assign(body.redirect || next);
    }).catch(function (err) {
      showError(err.message);
    });
  });

  /* ----- inside Element: the widget API (postMessage, api fromWidget / toWidget) ----- */
  if (!widgetId || window.parent === window || !elementOrigin) { return; }
  widgetBox.hidden = false;
  var requestId = "cercle-openid-" + Date.now();
  var done = false;

  function reply(request, response) {
    var answer = JSON.parse(JSON.stringify(request));
    answer.response = response;
    window.parent.postMessage(answer, elementOrigin);
  }

  function useCredentials(data) {
    if (done) { return; }
    if (!data || data.state === "blocked") {
      done = true;
      widgetBox.hidden = true;
      showError("Element a refusé de partager votre identité : connectez-vous ci-dessous.");
      return;
    }
    if (data.state !== "allowed") { return; }  // "request": the user is being asked
    done = true;
    exchange(data).then(function (body) {
      window.location.assign(body.redirect || next);
    }).catch(function (err) {
      widgetBox.hidden = true;
      showError(err.message);
    });
  }

  var asked = false;
  function askForIdentity() {
    if (asked) { return; }
    asked = true;
    window.parent.postMessage({
      api: "fromWidget", widgetId: widgetId, requestId: requestId, action: "get_openid", data: {}
    }, elementOrigin);
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== elementOrigin || event.source !== window.parent) { return; }
    var msg = event.data || {};
    if (msg.api === "toWidget" && !msg.response) {
      if (msg.action === "capabilities") {
        reply(msg, { capabilities: [] });  // nothing but the identity is needed
        askForIdentity();
      } else if (msg.action === "openid_credentials") {
        reply(msg, {});
        if (msg.data && msg.data.original_request_id === requestId) { useCredentials(msg.data); }
      } else {
        reply(msg, {});
      }
    } else if (msg.api === "fromWidget" && msg.requestId === requestId && msg.response) {
      useCredentials(msg.response);
    }
  });

  // Element starts with the capabilities exchange; a client that does not still gets asked.
  window.setTimeout(askForIdentity, 1500);
})();
