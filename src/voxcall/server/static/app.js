// The voxcall console: sign in with an API key, then the pages (hash routes) for calls (the
// playground and the call history), agents, durable tools and webhooks.
import { initAgents, showAgents } from "./agents.js";
import { api, setKey, storedKey } from "./api.js";
import { $ } from "./dom.js";
import { describeError } from "./errors.js";
import { pageChanged } from "./forms.js";
import { closeCall, loadHistory, openCall } from "./history.js";
import { initPlayground, leaveCall, loadVoices } from "./playground.js";
import { initTools, showTools } from "./tools.js";
import { initWebhooks, showWebhooks } from "./webhooks.js";

const VIEWS = ["calls", "agents", "tools", "webhooks"];
let signedIn = false;

/** "#/agents/123" -> ["agents", "123"]; anything unknown is the calls page. */
function route() {
  const [view, id] = location.hash.replace(/^#\/?/, "").split("/");
  return VIEWS.includes(view) ? [view, id ? decodeURIComponent(id) : ""] : ["calls", ""];
}

async function render({ focus = true } = {}) {
  if (!signedIn) return;
  const [view, id] = route();
  pageChanged();
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  for (const link of $("nav").querySelectorAll("a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `voxcall console · ${view}`;
  if (view === "agents") await showAgents(id);
  else if (view === "tools") await showTools(id);
  else if (view === "webhooks") await showWebhooks(id);
  else if (id) await openCall(id);
  else {
    closeCall();
    if (focus && !$("new-call").hidden) $("system-prompt").focus();
  }
}

async function signIn(key) {
  setKey(key);
  const account = await api("/accounts/me");
  setKey(key, { remember: true });
  $("api-key").value = "";
  $("account-name").textContent = `Signed in as ${account.name || account.accountId}`;
  for (const id of ["account-bar", "nav"]) $(id).hidden = false;
  $("sign-in").hidden = true;
  signedIn = true;
  await render();
  await Promise.all([loadVoices($("voice")), loadHistory()]);
}

function signOut() {
  leaveCall();
  setKey("");
  signedIn = false;
  for (const id of ["account-bar", "nav", ...VIEWS.map((v) => `view-${v}`)]) $(id).hidden = true;
  $("sign-in").hidden = false;
  $("api-key").value = "";
  $("api-key").focus();
}

async function onSignIn(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  $("sign-in-error").textContent = "";
  if (!key) {
    $("sign-in-error").textContent = "Enter an API key.";
    return;
  }
  try {
    await signIn(key);
  } catch (error) {
    setKey("");
    $("sign-in-error").textContent = error.status === 401 || error.status === 403 ? "That key was not accepted." : `Sign-in failed: ${describeError(error).join(" ")}`;
  }
}

function init() {
  initPlayground();
  initAgents();
  initTools();
  initWebhooks();
  $("sign-in-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", signOut);
  $("refresh-history").addEventListener("click", () => void loadHistory());
  window.addEventListener("hashchange", () => void render());
  if (storedKey()) {
    signIn(storedKey()).catch(() => signOut());
  } else {
    $("api-key").focus();
  }
}

init();
