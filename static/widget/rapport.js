/*
 * Rapport widget script: the chat launcher and panel, and the calls that tell Rapport who the
 * visitor is and talk to the help desk.
 *
 *   <script src="https://YOUR-RAPPORT/static/widget/rapport.js" data-agent="ag_…" async></script>
 *
 * Optional attributes on the same tag:
 *
 *   data-help-center="help.example.com docs.example.com"
 *       Links (<a href>) to these hosts carry a verified visitor's identity: when such a visitor
 *       clicks one, the widget adds a single-use ?rapport_identity=… token to it, and the widget
 *       on the help center identifies the visitor with it. Hosts are separated by spaces and
 *       matched exactly, ignoring case (help.example.com does not cover www.help.example.com;
 *       list each host); "host:port" matches that port only. Links added later count too.
 *       Anonymous and self-reported visitors' links, and links elsewhere, are left as they are.
 *       If the token does not come within 1.5 s the link opens without it. Ctrl/⌘/Shift-click
 *       and target="_blank" open the carrying link in a new tab; other targets, middle clicks
 *       and download links are left to the browser, as they are.
 *   data-position="right" | "left"
 *       Which bottom corner the chat launcher and panel sit in (right by default).
 *   data-color="#1d4ed8"
 *       The accent of the launcher, the panel's header and the visitor's messages, as #rgb or
 *       #rrggbb (anything else is ignored with a console warning). Text on it is white or
 *       near-black, whichever contrasts more.
 *   data-locale="en" | "fr"
 *       The panel's language; by default the page's <html lang> when the widget speaks it,
 *       else English. Strings live in one table (STRINGS) to add more.
 *   data-launcher="false"
 *       No launcher button: nothing is added to the page until it calls Rapport.open() (from
 *       its own "Chat with us" button, say); for pages that only use the calls below.
 *   data-poll-ms="3000"
 *       How often an open panel asks for new replies (250 to 60000 ms); a closed panel asks
 *       five times less often, a hidden tab not at all, and after failures it waits longer.
 *   data-user-email="…" data-user-name="…" data-user-phone="…"
 *       Who the visitor says they are (say, from your sign-up form), sent on load as a
 *       self-reported identify, like Rapport.identify({ email, name, phone }). Values are
 *       trimmed and empty ones ignored. It is sent before anything your page calls, so a
 *       signed identify of yours always comes last and wins; and a visitor this browser has
 *       already verified stays verified (unsigned data never changes a verified contact).
 *
 * Once loaded it defines window.Rapport and fires a `rapportLoaded` event on window:
 *
 *   Rapport.identify({ token })                                 signed JWT (best)
 *   Rapport.identify({ user_id, user_hash, user_metadata })     HMAC of user_id
 *   Rapport.identify({ email, name, phone, custom_data })       self-reported
 *   Rapport.startConversation(message)  Rapport.sendMessage(conversationId, body)
 *   Rapport.getMessages(conversationId, afterId)
 *   Rapport.linkWithIdentity(url)   a help-center link that keeps a verified visitor known
 *                                   (resolves to the URL with the token; data-help-center does
 *                                   this for you on click)
 *   Rapport.ready                   resolves once the load-time identifies (a help-center
 *                                   token in the address, data-user-*) are done
 *   Rapport.reset()                 forget this visitor (call it when your user signs out):
 *                                   the panel empties, its conversation is forgotten
 *   Rapport.open()  Rapport.close()  the chat panel (focus moves into it, and back)
 *
 * The chat panel: a launcher button at the bottom of the page opens a panel where the
 * visitor writes to the agent; their first message starts a conversation, replies from the
 * bot and support staff appear as they come, and the conversation follows the visitor from
 * page to page of the site (its id is kept with the session in localStorage). It lives in
 * the shadow root of one <rapport-widget> element, styled by a constructed stylesheet: host
 * CSS does not reach it, it does not restyle the host, and a Content-Security-Policy without
 * 'unsafe-inline' allows it (script-src and connect-src need this server's origin; nothing
 * for style-src). It fires rapport:open, rapport:close and rapport:conversation on window.
 *
 * Every call returns a Promise that always resolves (it never rejects and never throws into
 * the host page): to the server's JSON plus `ok: true`, or to
 * `{ ok: false, status, error: { code, message, fields } }`.
 */
(function (window, document) {
  "use strict";

  if (window.Rapport && window.Rapport.version) {
    return; // the script tag was included twice
  }

  var VERSION = "2.0";
  var HANDOFF_PARAM = "rapport_identity";
  // How long a help-center click waits for its token before the link opens without one.
  var HANDOFF_WAIT_MS = 1500;

  var script = document.currentScript || document.querySelector("script[data-agent][src*='rapport.js']");
  var agentId = (script && script.getAttribute("data-agent")) || "";
  var apiBase = (script && script.getAttribute("data-api")) || originOf(script && script.src) || window.location.origin;
  var storageKey = "rapport:" + agentId;
  var helpCenterHosts = parseHosts(script && script.getAttribute("data-help-center"));

  // "help.example.com Docs.Example.com:8443" -> [{ hostname, port }]; a port only when given.
  function parseHosts(value) {
    var hosts = [];
    String(value || "").split(/[\s,]+/).forEach(function (entry) {
      if (!entry) return;
      try {
        var url = new URL(entry.indexOf("://") === -1 ? "http://" + entry : entry);
        hosts.push({ hostname: url.hostname, port: url.port });
      } catch (e) {
        if (window.console && window.console.warn) {
          window.console.warn("Rapport: data-help-center: " + entry + " is not a host name.");
        }
      }
    });
    return hosts;
  }

  // An attribute of the script tag, trimmed ("" when absent).
  function attr(name) {
    var value = script && script.getAttribute(name);
    return value == null ? "" : String(value).trim();
  }

  // The visitor's self-reported details from data-user-*: trimmed, empty ones left out.
  function scriptTagUser() {
    var user = {};
    ["email", "name", "phone"].forEach(function (field) {
      var value = attr("data-user-" + field);
      if (value) user[field] = value;
    });
    return user;
  }

  function originOf(src) {
    try {
      return src ? new URL(src, window.location.href).origin : "";
    } catch (e) {
      return "";
    }
  }

  // --- State kept across page loads: the visitor id and the session token ---------------------

  var memoryState = null; // used when localStorage is unavailable (privacy modes, sandboxed frames)

  function loadState() {
    try {
      var raw = window.localStorage.getItem(storageKey);
      var parsed = raw ? JSON.parse(raw) : null;
      if (parsed && typeof parsed === "object") return parsed;
    } catch (e) {
      if (memoryState) return memoryState;
    }
    return {};
  }

  function saveState() {
    memoryState = state;
    try {
      window.localStorage.setItem(storageKey, JSON.stringify(state));
    } catch (e) {
      /* memory only */
    }
  }

  function randomId() {
    var cryptoApi = window.crypto || window.msCrypto;
    if (cryptoApi && typeof cryptoApi.randomUUID === "function") return cryptoApi.randomUUID();
    var bytes = new Uint8Array(16);
    if (cryptoApi && cryptoApi.getRandomValues) {
      cryptoApi.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  var state = loadState();
  if (typeof state.visitorId !== "string" || !state.visitorId) {
    state = { visitorId: randomId() };
    saveState();
  }
  var sessionContext = null;

  // --- HTTP -----------------------------------------------------------------------------------

  function failure(code, message, status) {
    return { ok: false, status: status || 0, error: { code: code, message: message, fields: {} } };
  }

  function request(method, path, body) {
    if (!agentId) {
      return Promise.resolve(failure("missing_agent", "The Rapport script tag needs data-agent=\"ag_…\"."));
    }
    var headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    // The session token proves this browser is the visitor it says it is.
    if (state.sessionToken) headers.Authorization = "Bearer " + state.sessionToken;
    var url = apiBase + "/widget/v1/" + encodeURIComponent(agentId) + path;
    return window
      .fetch(url, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        mode: "cors",
        credentials: "omit",
      })
      .then(
        function (response) {
          return response
            .json()
            .catch(function () { return null; })
            .then(function (data) {
              if (response.ok) return Object.assign({ ok: true, status: response.status }, data || {});
              var error = data && data.error ? data.error : {
                code: "http_" + response.status,
                message: "Rapport answered " + response.status + ".",
                fields: {},
              };
              var result = { ok: false, status: response.status, error: error };
              var wait = retryAfterOf(response, error);
              if (wait) result.retryAfter = wait;
              return result;
            });
        },
        function (err) {
          return failure("network_error", "Rapport could not be reached (" + (err && err.message) + ").");
        }
      );
  }

  // Seconds to wait after a 429 or 503: the Retry-After header (Rapport exposes it to other
  // origins), else the number the error message gives ("try again in 12 s").
  function retryAfterOf(response, error) {
    var header = null;
    try {
      header = response.headers.get("Retry-After");
    } catch (e) {
      header = null;
    }
    var seconds = parseInt(header, 10);
    if (!(seconds > 0)) {
      var said = /(\d+)\s*s\b/.exec((error && error.message) || "");
      seconds = said ? parseInt(said[1], 10) : 0;
    }
    return seconds > 0 ? Math.min(seconds, 3600) : 0;
  }

  // Calls run one after another, so an identify finishes before a conversation starts and
  // the session token every call uses is always the latest.
  var queue = Promise.resolve();

  function enqueue(task) {
    var run = queue.then(function () {
      try {
        return Promise.resolve(task()).catch(unexpected);
      } catch (err) {
        return unexpected(err);
      }
    });
    queue = run.then(function () {}, function () {});
    return run;
  }

  function unexpected(err) {
    return failure("client_error", "Rapport widget error: " + (err && err.message ? err.message : String(err)));
  }

  function emit(name, detail) {
    try {
      window.dispatchEvent(new CustomEvent(name, { detail: detail }));
    } catch (e) {
      /* very old browsers: no events */
    }
  }

  function report(result) {
    if (!result.ok) {
      emit("rapport:error", result.error);
      if (window.console && window.console.warn) {
        window.console.warn("Rapport: " + result.error.code + ": " + result.error.message);
      }
    }
    return result;
  }

  // --- Identify -------------------------------------------------------------------------------

  function doIdentify(params) {
    var body = {};
    Object.keys(params).forEach(function (key) { body[key] = params[key]; });
    body.visitor_id = state.visitorId;
    return request("POST", "/identify", body).then(function (result) {
      if (result.ok) {
        state.sessionToken = result.session_token;
        state.contact = result.contact || null;
        saveState();
        sessionContext = result.session_context || null;
        emit("rapport:identified", { contact: state.contact, ignoredKeys: result.ignored_keys || [] });
      }
      return report(result);
    });
  }

  var pendingIdentifies = 0; // queued or running: a help-center click waits for them

  function identify(params) {
    if (params === undefined || params === null) params = {};
    if (typeof params !== "object" || Array.isArray(params)) {
      return Promise.resolve(report(failure("invalid_arguments", "Rapport.identify takes an object, e.g. { token: \"…\" }.")));
    }
    pendingIdentifies += 1;
    return enqueue(function () { return doIdentify(params); }).then(function (result) {
      pendingIdentifies -= 1;
      return result;
    });
  }

  function ensureSession() {
    if (state.sessionToken) return Promise.resolve({ ok: true });
    return doIdentify({});
  }

  // A call with the session token; when the token has expired, identify again and retry once.
  function withSession(method, path, body) {
    return ensureSession().then(function (session) {
      if (!session.ok) return session;
      return request(method, path, body).then(function (result) {
        if (result.status !== 401) return result;
        state.sessionToken = null;
        return doIdentify({}).then(function (again) {
          return again.ok ? request(method, path, body) : again;
        });
      });
    });
  }

  // --- Help desk (conversation endpoints of the widget contract) -------------------------------

  // The three calls, unqueued: the page's API below and the panel both queue them.
  function conversationStart(message) {
    var body = message === undefined || message === null ? {} : { message: String(message) };
    return withSession("POST", "/conversations", body);
  }

  function conversationPath(conversationId) {
    return "/conversations/" + encodeURIComponent(String(conversationId)) + "/messages";
  }

  function messagePost(conversationId, body) {
    return withSession("POST", conversationPath(conversationId), { body: String(body == null ? "" : body) });
  }

  function messagesGet(conversationId, afterId) {
    var query = afterId ? "?after=" + encodeURIComponent(String(afterId)) : "";
    return withSession("GET", conversationPath(conversationId) + query);
  }

  function startConversation(message) {
    return enqueue(function () { return conversationStart(message).then(report); });
  }

  function sendMessage(conversationId, body) {
    if (!conversationId) return Promise.resolve(report(failure("invalid_arguments", "sendMessage needs a conversation id.")));
    return enqueue(function () { return messagePost(conversationId, body).then(report); });
  }

  function getMessages(conversationId, afterId) {
    if (!conversationId) return Promise.resolve(report(failure("invalid_arguments", "getMessages needs a conversation id.")));
    return enqueue(function () { return messagesGet(conversationId, afterId).then(report); });
  }

  // --- Help-center hand-off -------------------------------------------------------------------

  function isVerified() {
    return !!(state.contact && state.contact.identity === "verified");
  }

  function identityToken() {
    return enqueue(function () {
      if (!state.sessionToken) return report(failure("not_verified", "Identify the visitor first."));
      return request("GET", "/identity-token").then(report);
    });
  }

  function withToken(url, result) {
    var target;
    try {
      target = new URL(String(url), window.location.href);
    } catch (e) {
      return String(url);
    }
    if (result.ok) target.searchParams.set(result.param || HANDOFF_PARAM, result.token);
    return target.toString();
  }

  function linkWithIdentity(url) {
    return identityToken().then(function (result) { return withToken(url, result); });
  }

  // --- Help-center links (data-help-center) ---------------------------------------------------

  function isHelpCenter(url) {
    if (url.protocol !== "https:" && url.protocol !== "http:") return false;
    for (var i = 0; i < helpCenterHosts.length; i++) {
      var host = helpCenterHosts[i];
      if (url.hostname === host.hostname && (!host.port || url.port === host.port)) return true;
    }
    return false;
  }

  function clickedLink(event) {
    var path = typeof event.composedPath === "function" ? event.composedPath() : [];
    for (var i = 0; i < path.length; i++) {
      var node = path[i];
      if (node && node.tagName === "A" && typeof node.href === "string" && node.hasAttribute("href")) return node;
    }
    var start = event.target && event.target.closest ? event.target : null;
    var link = start ? start.closest("a[href]") : null;
    return link && typeof link.href === "string" ? link : null;
  }

  // The link with a fresh token, or as it is when the visitor turns out not to be verified,
  // the token is refused, or it takes longer than HANDOFF_WAIT_MS. Queued behind identifies
  // in flight, so a click right after sign-in carries the new identity. Quiet: a visitor who
  // is not verified is the usual case, not an error to report.
  function helpCenterHref(url) {
    var token = enqueue(function () {
      if (!state.sessionToken || !isVerified()) return failure("not_verified", "Not verified.");
      return request("GET", "/identity-token");
    });
    var timeout = new Promise(function (resolve) {
      window.setTimeout(function () { resolve(failure("timeout", "No token in time.")); }, HANDOFF_WAIT_MS);
    });
    return Promise.race([token, timeout]).then(function (result) { return withToken(url, result); });
  }

  function onLinkClick(event) {
    if (event.defaultPrevented || event.button !== 0 || event.altKey) return;
    var link = clickedLink(event);
    if (!link || link.hasAttribute("download")) return;
    var url;
    try {
      url = new URL(link.href);
    } catch (e) {
      return;
    }
    if (!isHelpCenter(url)) return;
    // Only a verified visitor carries an identity; an identify in flight may make one.
    if (!isVerified() && pendingIdentifies === 0) return;
    var target = (link.getAttribute("target") || "").toLowerCase();
    var newTab = event.ctrlKey || event.metaKey || event.shiftKey || target === "_blank";
    if (!newTab && target && target !== "_self") return; // a named frame, _top, _parent
    var opened = null;
    if (newTab) {
      // Opened now, while the click still counts as the user's: a tab opened after waiting
      // for the token could be stopped by a pop-up blocker. Blocked anyway: the browser
      // follows the link itself, without the token.
      opened = window.open("", "_blank");
      if (!opened) return;
      try {
        opened.opener = null; // the help center gets no handle on this page
      } catch (e) {
        /* already detached */
      }
    }
    event.preventDefault();
    helpCenterHref(url.toString()).then(function (href) {
      if (opened) opened.location.replace(href);
      else window.location.assign(href);
    });
  }

  if (helpCenterHosts.length) document.addEventListener("click", onLinkClick, false);

  function restoreFromLink() {
    var token = null;
    try {
      var here = new URL(window.location.href);
      token = here.searchParams.get(HANDOFF_PARAM);
      if (token) {
        // Out of the address bar and history at once: the token is single-use anyway.
        here.searchParams.delete(HANDOFF_PARAM);
        window.history.replaceState(window.history.state, "", here.pathname + here.search + here.hash);
      }
    } catch (e) {
      token = null;
    }
    if (!token) return Promise.resolve(null);
    return identify({ identity_token: token });
  }

  // --- Sign-out ---------------------------------------------------------------------------------

  function reset() {
    return enqueue(function () {
      state = { visitorId: randomId() };
      sessionContext = null;
      saveState();
      emit("rapport:reset", {});
      return { ok: true };
    });
  }

  // Load-time identifies are queued now, before the page can call anything: a signed
  // identify the page makes on rapportLoaded runs after them and has the last word.
  var user = scriptTagUser();
  var ready = Promise.all([
    restoreFromLink(),
    Object.keys(user).length ? identify(user) : Promise.resolve(null),
  ]);


  // --- The chat panel: a launcher button and a panel, in a shadow root ---------------------------
  //
  // Everything the widget shows lives in one <rapport-widget> element's open shadow root, styled
  // by a constructed stylesheet (adoptedStyleSheets): the host page's CSS cannot reach inside,
  // ours cannot leak out, and a strict style-src that forbids inline <style> still allows it.
  // Element styles are never set through style attributes; message text is only ever
  // textContent, links are built as elements.

  var STRINGS = {
    en: {
      open: "Open chat",
      unread: "{n} new",
      close: "Close chat",
      title: "Chat with us",
      subtitle: "Ask us anything, we reply here.",
      empty: "Send us a message and we will get back to you.",
      messages: "Messages",
      message: "Message",
      placeholder: "Write a message…",
      send: "Send",
      visitor: "You",
      bot: "Bot",
      staff: "Support",
      sending: "Sending…",
      failed: "Not sent.",
      retry: "Retry",
      offline: "You are offline. Messages will send when you retry.",
      unreachable: "We cannot be reached right now. Trying again…",
      limited: "Too many messages at once. Try again in {s} s.",
      email: "Your email, so we can reply if you leave",
      save: "Save",
      saved: "Thanks, we will reply to {email}.",
    },
    fr: {
      open: "Ouvrir le chat",
      unread: "{n} nouveau(x)",
      close: "Fermer le chat",
      title: "Discutons",
      subtitle: "Posez-nous vos questions, nous répondons ici.",
      empty: "Envoyez-nous un message, nous vous répondrons.",
      messages: "Messages",
      message: "Message",
      placeholder: "Écrivez un message…",
      send: "Envoyer",
      visitor: "Vous",
      bot: "Bot",
      staff: "Support",
      sending: "Envoi…",
      failed: "Non envoyé.",
      retry: "Réessayer",
      offline: "Vous êtes hors ligne. Réessayez une fois reconnecté.",
      unreachable: "Impossible de nous joindre pour le moment. Nouvel essai…",
      limited: "Trop de messages d’un coup. Réessayez dans {s} s.",
      email: "Votre e-mail, pour vous répondre si vous partez",
      save: "Enregistrer",
      saved: "Merci, nous répondrons à {email}.",
    },
  };

  function pickLocale() {
    var wanted = [attr("data-locale"), document.documentElement.lang || ""];
    for (var i = 0; i < wanted.length; i++) {
      var code = wanted[i].toLowerCase().split("-")[0];
      if (STRINGS[code]) return code;
    }
    return "en";
  }

  var locale = pickLocale();

  function t(key, values) {
    var text = STRINGS[locale][key] || STRINGS.en[key];
    Object.keys(values || {}).forEach(function (name) { text = text.replace("{" + name + "}", values[name]); });
    return text;
  }

  // #rgb or #rrggbb only: the value goes into a stylesheet, so nothing else is accepted.
  function hexColor(value) {
    var match = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(value);
    if (!match) return "";
    var hex = match[1].length === 3 ? match[1].replace(/(.)/g, "$1$1") : match[1];
    return "#" + hex.toLowerCase();
  }

  function luminance(hex) {
    var sum = 0;
    [0.2126, 0.7152, 0.0722].forEach(function (weight, i) {
      var c = parseInt(hex.substr(1 + 2 * i, 2), 16) / 255;
      sum += weight * (c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4));
    });
    return sum;
  }

  // Text on the accent: white or near-black, whichever contrasts more (WCAG ratio).
  function textOn(hex) {
    var l = luminance(hex);
    return (1.05 / (l + 0.05)) >= ((l + 0.05) / (luminance("#111827") + 0.05)) ? "#ffffff" : "#111827";
  }

  var DEFAULT_COLOR = "#1d4ed8";
  if (attr("data-color") && !hexColor(attr("data-color")) && window.console && window.console.warn) {
    window.console.warn("Rapport: data-color must be a hex colour like #1d4ed8.");
  }
  var accent = hexColor(attr("data-color")) || DEFAULT_COLOR;
  var onLeft = attr("data-position").toLowerCase() === "left";
  var withLauncher = attr("data-launcher").toLowerCase() !== "false";
  var pollMs = Math.max(250, Math.min(60000, parseInt(attr("data-poll-ms"), 10) || 3000));
  var CLOSED_POLL_FACTOR = 5; // closed, the panel only looks for replies to count them
  var MAX_BACKOFF = 16; // after failures, up to 16 intervals between tries

  var CSS =
    ":host{all:initial!important;display:block!important;position:fixed!important;top:0!important;left:0!important;" +
    "width:0!important;height:0!important;overflow:visible!important;z-index:2147483000!important;" +
    "visibility:visible!important;opacity:1!important;transform:none!important;filter:none!important;contain:none!important}" +
    ".rp{all:initial;display:block;--a:" + accent + ";--af:" + textOn(accent) + ";" +
    "font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#1f2937;text-align:left}" +
    ".rp *,.rp *::before,.rp *::after{box-sizing:border-box}" +
    "button,input,textarea{font:inherit;letter-spacing:normal;margin:0}" +
    "button{cursor:pointer}" +
    ":focus-visible{outline:3px solid #111827;outline-offset:2px;box-shadow:0 0 0 5px #fff}" +
    ".launcher{position:fixed;bottom:20px;right:20px;width:56px;height:56px;padding:0;border:0;border-radius:50%;" +
    "background:var(--a);color:var(--af);display:flex;align-items:center;justify-content:center;box-shadow:0 4px 14px rgba(0,0,0,.28)}" +
    ".left .launcher{right:auto;left:20px}" +
    ".launcher svg{width:26px;height:26px;fill:currentColor}" +
    ".count{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;" +
    "background:#b91c1c;color:#fff;font-size:12px;font-weight:700;line-height:22px;text-align:center}" +
    ".count[hidden],[hidden]{display:none!important}" +
    ".panel{position:fixed;bottom:88px;right:20px;width:370px;max-width:calc(100vw - 40px);height:600px;" +
    "max-height:calc(100vh - 108px);display:flex;flex-direction:column;background:#fff;color:#1f2937;" +
    "border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.28);overflow:hidden}" +
    ".left .panel{right:auto;left:20px}" +
    ".bare .panel{bottom:20px;max-height:calc(100vh - 40px)}" +
    "header{display:flex;align-items:flex-start;gap:8px;padding:16px;background:var(--a);color:var(--af)}" +
    "h2{margin:0;font-size:17px;font-weight:650;line-height:1.3}" +
    "header p{margin:2px 0 0;font-size:13px}" +
    ".close{margin-left:auto;flex:none;width:36px;height:36px;padding:0;border:0;border-radius:8px;" +
    "background:transparent;color:inherit;font-size:24px;line-height:1}" +
    ".log{flex:1;overflow-y:auto;margin:0;padding:16px;list-style:none;display:flex;flex-direction:column;gap:10px;background:#f8fafc}" +
    ".hint{margin:auto 0 0;color:#4b5563;font-size:13px;text-align:center}" +
    ".msg{display:flex;flex-direction:column;align-items:flex-start;max-width:85%}" +
    ".msg.visitor{align-self:flex-end;align-items:flex-end}" +
    ".bubble{padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere;background:#e5e7eb;color:#111827}" +
    ".visitor .bubble{background:var(--a);color:var(--af)}" +
    ".bubble a{color:inherit;text-decoration:underline}" +
    ".state{margin-top:2px;font-size:12px;color:#4b5563}" +
    ".failed .state{color:#b91c1c}" +
    ".link{padding:0 0 0 6px;border:0;background:none;color:#1e40af;font-size:12px;font-weight:600;text-decoration:underline}" +
    ".banner{margin:0;padding:8px 16px;background:#fef3c7;color:#78350f;font-size:13px}" +
    ".who,.composer{display:flex;flex-wrap:wrap;gap:8px;padding:10px 16px;border-top:1px solid #e5e7eb;align-items:flex-end}" +
    ".who label{width:100%;font-size:13px;color:#374151}" +
    ".who p{margin:0;font-size:13px;color:#4b5563;width:100%}" +
    ".who .error{color:#b91c1c}" +
    "input,textarea{flex:1;min-width:0;padding:8px 10px;border:1px solid #6b7280;border-radius:8px;background:#fff;color:#111827;font-size:14px}" +
    "textarea{resize:none;height:42px;max-height:120px}" +
    ".btn{min-height:40px;padding:8px 14px;border:0;border-radius:8px;background:var(--a);color:var(--af);font-weight:600}" +
    ".sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}" +
    "@media (max-width:480px){.rp .panel{top:0;right:0;bottom:0;left:0;width:auto;max-width:none;height:auto;max-height:none;border-radius:0}" +
    ".open .launcher{display:none}}";

  var ui = null; // the panel's elements, once built
  var panelOpen = false;
  var returnFocusTo = null;
  var lastId = 0; // the newest message id the panel has from the server
  var shown = {}; // message ids already in the list
  var generation = 0; // bumped when the panel forgets everything: late answers are dropped
  var pollTimer = null;
  var failures = 0;
  var limitTimer = null;
  var sending = Promise.resolve(); // the visitor's messages go out one after another
  var knownContactId = state.contact ? state.contact.id : null;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function icon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z");
    svg.appendChild(path);
    return svg;
  }

  function build() {
    if (ui) return ui;
    if (!document.body) return null;
    var host = document.createElement("rapport-widget");
    var root = host.attachShadow({ mode: "open" });
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];

    var wrap = el("div", "rp" + (onLeft ? " left" : "") + (withLauncher ? "" : " bare"));
    wrap.setAttribute("lang", locale);
    var launcher = null;
    var count = el("span", "count");
    count.hidden = true;
    count.setAttribute("aria-hidden", "true");
    if (withLauncher) {
      launcher = el("button", "launcher");
      launcher.type = "button";
      launcher.setAttribute("aria-expanded", "false");
      launcher.setAttribute("aria-controls", "rapport-panel");
      launcher.setAttribute("aria-label", t("open"));
      launcher.appendChild(icon());
      launcher.appendChild(count);
      launcher.addEventListener("click", function () { if (panelOpen) close(); else open(); });
      wrap.appendChild(launcher);
    }

    var panel = el("section", "panel");
    panel.id = "rapport-panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-labelledby", "rapport-title");
    var header = el("header");
    var heading = el("div");
    var title = el("h2", "", t("title"));
    title.id = "rapport-title";
    heading.appendChild(title);
    heading.appendChild(el("p", "", t("subtitle")));
    header.appendChild(heading);
    var closeButton = el("button", "close", "×");
    closeButton.type = "button";
    closeButton.setAttribute("aria-label", t("close"));
    closeButton.addEventListener("click", function () { close(); });
    header.appendChild(closeButton);
    panel.appendChild(header);

    var log = el("ol", "log");
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-label", t("messages"));
    log.tabIndex = 0;
    var hint = el("li", "hint", t("empty"));
    log.appendChild(hint);
    panel.appendChild(log);

    var banner = el("p", "banner");
    banner.setAttribute("role", "status");
    banner.hidden = true;
    panel.appendChild(banner);

    // Anonymous visitors may say who they are: a self-reported identify, as Rapport.identify.
    var who = el("form", "who");
    who.noValidate = true;
    var emailLabel = el("label", "", t("email"));
    emailLabel.htmlFor = "rapport-email";
    var email = el("input");
    email.type = "email";
    email.id = "rapport-email";
    email.autocomplete = "email";
    email.required = true;
    var save = el("button", "btn", t("save"));
    save.type = "submit";
    var whoNote = el("p", "");
    whoNote.id = "rapport-email-note";
    whoNote.hidden = true;
    email.setAttribute("aria-describedby", whoNote.id);
    who.appendChild(emailLabel);
    who.appendChild(email);
    who.appendChild(save);
    who.appendChild(whoNote);
    who.addEventListener("submit", function (event) {
      event.preventDefault();
      saveEmail();
    });
    panel.appendChild(who);

    var composer = el("form", "composer");
    var label = el("label", "sr", t("message"));
    label.htmlFor = "rapport-message";
    var input = el("textarea");
    input.id = "rapport-message";
    input.rows = 1;
    input.maxLength = 10000;
    input.placeholder = t("placeholder");
    var send = el("button", "btn", t("send"));
    send.type = "submit";
    composer.appendChild(label);
    composer.appendChild(input);
    composer.appendChild(send);
    composer.addEventListener("submit", function (event) {
      event.preventDefault();
      submit();
    });
    input.addEventListener("keydown", function (event) {
      // Enter sends, Shift+Enter starts a new line (and an IME composition keeps its Enter).
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    });
    panel.appendChild(composer);
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.stopPropagation();
        close();
      }
    });
    wrap.appendChild(panel);
    root.appendChild(wrap);
    document.body.appendChild(host);

    ui = {
      host: host, root: root, wrap: wrap, launcher: launcher, count: count, panel: panel, log: log,
      hint: hint, banner: banner, who: who, email: email, whoNote: whoNote, input: input,
    };
    refreshWho();
    if (state.conversationId) poll(true);
    return ui;
  }

  // --- Opening and closing ---

  function open() {
    if (!build()) return false;
    if (!panelOpen) {
      panelOpen = true;
      var active = document.activeElement;
      returnFocusTo = active && active !== document.body && active !== ui.host ? active : null;
      ui.panel.hidden = false;
      ui.wrap.classList.add("open");
      if (ui.launcher) {
        ui.launcher.setAttribute("aria-expanded", "true");
        ui.launcher.setAttribute("aria-label", t("close"));
      }
      markRead();
      scrollDown();
      schedulePoll(0);
      emit("rapport:open", {});
    }
    ui.input.focus();
    return true;
  }

  function close() {
    if (!ui || !panelOpen) return false;
    panelOpen = false;
    ui.panel.hidden = true;
    ui.wrap.classList.remove("open");
    if (ui.launcher) {
      ui.launcher.setAttribute("aria-expanded", "false");
      updateCount();
      ui.launcher.focus();
    } else if (returnFocusTo && typeof returnFocusTo.focus === "function") {
      returnFocusTo.focus();
    }
    returnFocusTo = null;
    schedulePoll();
    emit("rapport:close", {});
    return true;
  }

  // --- Messages ---

  var URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;

  // Text with its web addresses as links, built node by node (never parsed as HTML).
  function fillText(node, text) {
    var at = 0;
    var match;
    URL_PATTERN.lastIndex = 0;
    while ((match = URL_PATTERN.exec(text))) {
      var href = match[0].replace(/[.,;:!?)\]}'"]+$/, "");
      if (match.index > at) node.appendChild(document.createTextNode(text.slice(at, match.index)));
      var link = el("a", "", href);
      link.href = href;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      node.appendChild(link);
      at = match.index + href.length;
      URL_PATTERN.lastIndex = at;
    }
    if (at < text.length) node.appendChild(document.createTextNode(text.slice(at)));
  }

  function messageItem(role, body) {
    var item = el("li", "msg " + (role === "visitor" ? "visitor" : "reply " + role));
    var bubble = el("div", "bubble");
    bubble.appendChild(el("span", "sr", (t(role) || role) + ": "));
    fillText(bubble, body);
    item.appendChild(bubble);
    return item;
  }

  function setItemState(item, kind, text, retry) {
    item.classList.remove("pending", "failed");
    if (kind) item.classList.add(kind);
    var old = item.querySelector(".state");
    if (old) item.removeChild(old);
    if (!text) return;
    var line = el("div", "state", text);
    if (retry) {
      var again = el("button", "link", t("retry"));
      again.type = "button";
      again.addEventListener("click", retry);
      line.appendChild(again);
    }
    item.appendChild(line);
  }

  function nearBottom() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 80;
  }

  function scrollDown() {
    if (ui) ui.log.scrollTop = ui.log.scrollHeight;
  }

  function append(item) {
    var follow = nearBottom();
    ui.hint.hidden = true;
    ui.log.appendChild(item);
    if (follow) scrollDown();
  }

  function render(messages) {
    messages.forEach(function (message) {
      if (message.id > lastId) lastId = message.id;
      if (shown[message.id]) return;
      shown[message.id] = true;
      // The first message went out with the conversation: its bubble is already there.
      var waiting = message.role === "visitor" && ui.log.querySelector(".msg.first");
      if (waiting) {
        waiting.classList.remove("first");
        return;
      }
      var item = messageItem(message.role, String(message.body));
      if (message.role !== "visitor") item.setAttribute("data-id", message.id);
      append(item);
    });
    if (panelOpen) markRead();
    else updateCount();
  }

  function markRead() {
    if ((state.readId || 0) < lastId) {
      state.readId = lastId;
      saveState();
    }
    updateCount();
  }

  function updateCount() {
    if (!ui || !ui.launcher) return;
    var unread = 0;
    if (!panelOpen) {
      Array.prototype.forEach.call(ui.log.querySelectorAll(".reply"), function (item) {
        if (Number(item.getAttribute("data-id")) > (state.readId || 0)) unread += 1;
      });
    }
    ui.count.textContent = String(unread);
    ui.count.hidden = unread === 0;
    var name = panelOpen ? t("close") : t("open");
    ui.launcher.setAttribute("aria-label", unread ? name + " (" + t("unread", { n: unread }) + ")" : name);
  }

  function forgetPanel() {
    generation += 1;
    lastId = 0;
    shown = {};
    failures = 0;
    window.clearTimeout(pollTimer);
    if (!ui) return;
    Array.prototype.slice.call(ui.log.querySelectorAll(".msg")).forEach(function (item) { ui.log.removeChild(item); });
    ui.hint.hidden = false;
    showBanner("");
    updateCount();
  }

  // --- Status line: offline, unreachable, rate limited ---

  function showBanner(text) {
    if (!ui) return;
    ui.banner.textContent = text;
    ui.banner.hidden = !text;
  }

  function explain(result) {
    if (result.status === 429) {
      var seconds = result.retryAfter || 30;
      showBanner(t("limited", { s: seconds }));
      window.clearTimeout(limitTimer);
      limitTimer = window.setTimeout(function () {
        limitTimer = null;
        showBanner("");
      }, seconds * 1000);
    } else if (result.error && result.error.code === "network_error") {
      showBanner(window.navigator.onLine === false ? t("offline") : t("unreachable"));
    }
  }

  // --- Polling for replies ---

  function schedulePoll(delay) {
    window.clearTimeout(pollTimer);
    if (!ui || !state.conversationId || document.hidden) return;
    if (delay === undefined) {
      delay = pollMs * (panelOpen ? 1 : CLOSED_POLL_FACTOR) * Math.min(MAX_BACKOFF, Math.pow(2, failures));
    }
    pollTimer = window.setTimeout(function () { poll(false); }, delay);
  }

  function poll(fromStart) {
    var conversationId = state.conversationId;
    if (!ui || !conversationId) return Promise.resolve();
    var mine = generation;
    var after = fromStart ? 0 : lastId;
    window.clearTimeout(pollTimer);
    return enqueue(function () { return messagesGet(conversationId, after); }).then(function (result) {
      if (mine !== generation || conversationId !== state.conversationId) return;
      if (result.ok) {
        failures = 0;
        if (!ui.banner.hidden && !limitTimer) showBanner("");
        render(result.messages || []);
      } else if (result.status === 404) {
        // Not this visitor's conversation (any more): merged away or another person signed
        // in. The panel shows nothing of it.
        state.conversationId = null;
        saveState();
        forgetPanel();
        return;
      } else {
        failures += 1;
        explain(result);
      }
      schedulePoll();
    });
  }

  document.addEventListener("visibilitychange", function () {
    // Hidden tabs do not poll; back in view, look at once.
    if (document.hidden) window.clearTimeout(pollTimer);
    else schedulePoll(0);
  });
  window.addEventListener("online", function () {
    showBanner("");
    failures = 0;
    schedulePoll(0);
  });
  window.addEventListener("offline", function () { showBanner(t("offline")); });

  // --- Sending ---

  function submit() {
    var text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = "";
    var item = messageItem("visitor", text);
    append(item);
    scrollDown();
    deliver(item, text);
  }

  function deliver(item, text) {
    var mine = generation;
    setItemState(item, "pending", t("sending"));
    sending = sending.then(function () {
      if (mine !== generation) return null;
      return post(text).then(function (result) {
        if (mine !== generation) return;
        if (result.ok) {
          setItemState(item, "", "");
          showBanner("");
          if (result.message) {
            shown[result.message.id] = true;
          } else {
            item.classList.add("first"); // the conversation's first message: see render
          }
          poll(false);
        } else {
          var reason = result.status === 429 || (result.error && result.error.code === "network_error")
            ? t("failed")
            : t("failed") + " " + ((result.error && result.error.message) || "");
          setItemState(item, "failed", reason, function () { deliver(item, text); });
          explain(result);
        }
      });
    });
  }

  function post(text) {
    return enqueue(function () {
      if (!state.conversationId) return start(text);
      return messagePost(state.conversationId, text).then(function (result) {
        if (result.status !== 404) return result;
        // The conversation is gone for this visitor: start a new one with the message.
        state.conversationId = null;
        saveState();
        return start(text);
      });
    });
  }

  function start(text) {
    return conversationStart(text).then(function (result) {
      if (result.ok && result.conversation) {
        state.conversationId = result.conversation.id;
        saveState();
        emit("rapport:conversation", { conversationId: state.conversationId });
      }
      return result;
    });
  }

  // --- Who the visitor is ---

  function refreshWho() {
    if (!ui) return;
    var identity = state.contact ? state.contact.identity : "anonymous";
    ui.who.hidden = identity === "verified" || (identity === "self_reported" && ui.whoNote.hidden);
  }

  function showEmailField(visible) {
    [ui.email, ui.email.previousSibling, ui.email.nextSibling].forEach(function (node) { node.hidden = !visible; });
  }

  function saveEmail() {
    var value = ui.email.value.trim();
    ui.whoNote.classList.remove("error");
    identify({ email: value }).then(function (result) {
      ui.whoNote.hidden = false;
      if (result.ok) {
        ui.whoNote.textContent = t("saved", { email: value });
        ui.email.value = "";
        ui.email.removeAttribute("aria-invalid");
        showEmailField(false);
      } else {
        var fields = result.error.fields || {};
        ui.whoNote.textContent = (fields.email && fields.email[0]) || result.error.message;
        ui.whoNote.classList.add("error");
        ui.email.setAttribute("aria-invalid", "true");
        explain(result);
      }
      refreshWho();
    });
  }

  window.addEventListener("rapport:identified", function (event) {
    var contact = event.detail && event.detail.contact;
    var id = contact ? contact.id : null;
    if (id !== knownContactId) {
      knownContactId = id;
      // Someone else now, or merged: check the conversation is still this visitor's.
      if (state.conversationId) poll(false);
    }
    refreshWho();
  });

  window.addEventListener("rapport:reset", function () {
    knownContactId = null;
    forgetPanel();
    if (ui) {
      ui.whoNote.hidden = true;
      ui.whoNote.textContent = "";
      showEmailField(true);
    }
    refreshWho();
  });

  if (withLauncher) {
    if (document.body) build();
    else document.addEventListener("DOMContentLoaded", build);
  }

  window.Rapport = Object.freeze({
    version: VERSION,
    agent: agentId,
    identify: identify,
    startConversation: startConversation,
    sendMessage: sendMessage,
    getMessages: getMessages,
    identityToken: identityToken,
    linkWithIdentity: linkWithIdentity,
    reset: reset,
    open: open,
    close: close,
    ready: ready.then(function () { return window.Rapport; }),
    get visitorId() { return state.visitorId; },
    get contact() { return state.contact || null; },
    get sessionContext() { return sessionContext; },
    get isOpen() { return panelOpen; },
    get conversationId() { return state.conversationId || null; },
  });

  emit("rapportLoaded", { agent: agentId, visitorId: state.visitorId });
})(window, document);
