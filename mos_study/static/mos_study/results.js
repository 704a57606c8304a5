// The results page: asks the server every few seconds whether ratings arrived (204 when not) and swaps in the new
// tables and figures when they did, and the line that says how fresh they are when that changed. No websockets; the
// checkbox pauses it.
(function () {
  "use strict";

  const toggle = document.getElementById("live-toggle");
  const status = document.getElementById("live-status");

  function body() {
    return document.getElementById("results-body");
  }

  async function refresh() {
    const current = body();
    if (!current || !toggle.checked || document.hidden) return;
    const line = document.getElementById("results-freshness");
    let url = current.dataset.liveUrl + "?version=" + encodeURIComponent(current.dataset.version);
    if (line) url += "&state=" + encodeURIComponent(line.dataset.state);
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (response.status === 204) {
        status.textContent = "";
      } else if (response.ok) {
        const holder = document.createElement("template");
        holder.innerHTML = (await response.text()).trim();
        const freshLine = holder.content.getElementById("results-freshness");
        if (freshLine && line) line.replaceWith(freshLine);
        else if (freshLine) current.before(freshLine);
        const fresh = holder.content.getElementById("results-body");
        if (fresh) {
          // Tables the reader opened stay open.
          current.querySelectorAll("details[id]").forEach((old) => {
            const twin = fresh.querySelector("#" + CSS.escape(old.id));
            if (twin) twin.open = old.open;
          });
          current.replaceWith(fresh);
        }
        status.textContent = "updated " + new Date().toLocaleTimeString();
      } else {
        status.textContent = "could not update (HTTP " + response.status + ")";
      }
    } catch (error) {
      status.textContent = "could not update (network)";  // try again at the next tick
    }
  }

  const seconds = Number((body() || {}).dataset?.pollSeconds) || 15;
  setInterval(refresh, seconds * 1000);
})();
