// Chasqui console: live updates over Server-Sent Events, nothing else.
// The server renders every page; this module only re-fetches the fragments
// that changed (inbox rows, a conversation's timeline and state) and keeps
// the number of conversations waiting in the page title.

const body = document.body;
const conversation = body.dataset.conversation || "";
const baseTitle = body.dataset.title || document.title;

async function replace(id, url) {
  const target = document.getElementById(id);
  if (!target) return;
  const response = await fetch(url, { credentials: "same-origin" });
  if (response.ok) target.innerHTML = await response.text();
}

function showWaiting(count) {
  document.title = count > 0 ? `(${count}) ${baseTitle}` : baseTitle;
  const badge = document.getElementById("waiting-count");
  if (badge) badge.textContent = String(count);
}

function connect() {
  if (!document.getElementById("main") || !document.getElementById("sign-out")) return;
  const url = "/console/events" + (conversation ? `?c=${encodeURIComponent(conversation)}` : "");
  const source = new EventSource(url);
  let last = null;
  source.addEventListener("change", (event) => {
    const state = JSON.parse(event.data);
    showWaiting(state.waiting);
    // The first event refreshes too: a change may have landed between the
    // page's rendering and the stream's start.
    const rows = document.getElementById("rows");
    if ((last === null || state.inbox !== last.inbox) && rows
        && !document.getElementById("inbox").dataset.search) {
      replace("rows", "/console/rows" + window.location.search);
    }
    if (conversation && (last === null || state.conversation !== last.conversation)) {
      const base = `/console/c/${encodeURIComponent(conversation)}/part/`;
      replace("timeline", base + "timeline");
      replace("state", base + "state");
    }
    last = state;
    body.dataset.live = "on";
  });
  source.addEventListener("error", () => { body.dataset.live = "off"; });
}

connect();
