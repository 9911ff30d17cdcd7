// tenantd console: a tenant's page refreshes its live part at each of the tenant's events (a
// Server-Sent Events stream) while a job of the tenant is active, and every 15 seconds besides
// (a job's steps are not events); every 2 seconds while the stream is down (it reconnects by
// itself). Without reloading the page. Everything else works without JavaScript.
"use strict";
(function () {
  const root = document.getElementById("live");
  if (!root) return;
  const url = root.dataset.liveUrl;
  const live = () => {
    const body = root.querySelector("[data-live]");
    return body && body.dataset.live === "true";
  };
  let busy = false;
  async function refresh() {
    if (busy || !live() || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.redirected || !response.ok) {
        // Signed out or gone: a full load shows the sign-in or the error.
        if (response.redirected || response.status === 404) window.location.reload();
        return;
      }
      const html = await response.text();
      const open = new Set([...root.querySelectorAll("details[open]")].map((d) => d.closest("article")?.id));
      root.innerHTML = html;
      for (const id of open) {
        const d = id && document.getElementById(id)?.querySelector("details");
        if (d) d.open = true;
      }
    } catch (_) {
      // The daemon restarting: try again at the next tick.
    } finally {
      busy = false;
    }
  }
  let streaming = false;
  let last = Date.now();
  const eventsUrl = root.dataset.eventsUrl;
  if (eventsUrl && window.EventSource) {
    const source = new EventSource(eventsUrl);
    source.onopen = () => { streaming = true; };
    // Once now, and once more shortly: the job's own record lands just after the change.
    source.onmessage = () => {
      last = Date.now();
      refresh();
      setTimeout(refresh, 1000);
    };
    source.onerror = () => { streaming = false; };
  }
  setInterval(() => {
    if (!streaming || Date.now() - last >= 15000) {
      last = Date.now();
      refresh();
    }
  }, 2000);
})();
