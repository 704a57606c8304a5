// The rating page: one image at native size, scores by buttons or keys 1-5, the next image preloaded.
// A rating counts only once the server acknowledged it; failed POSTs are retried, so nothing rated is lost.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("rate-config").textContent);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const img = document.getElementById("stimulus");
  const loading = document.getElementById("loading");
  const buttons = Array.from(document.querySelectorAll("button.score"));
  const statusLine = document.getElementById("status");
  const sizeWarning = document.getElementById("size-warning");
  const calibrationLabel = document.getElementById("calibration-label");

  let trials = [];      // unrated trials, in session order
  let current = 0;      // index into trials
  let done = 0;
  let total = 0;
  let shownAt = null;   // performance.now() when the current image appeared; null while none is shown
  let sending = false;

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // fetch, retried on network errors, 5xx and 429 with growing waits (at least the server's Retry-After); other
  // answers are returned as they are. 503/429 mean the server is busy (e.g. its database is unreachable).
  async function fetchRetrying(url, options) {
    for (let attempt = 0; ; attempt++) {
      let wait = Math.min(10000, 500 * 2 ** attempt);
      let message = "Connection problem, retrying… (your ratings so far are saved)";
      try {
        const response = await fetch(url, options);
        if (response.status < 500 && response.status !== 429) {
          return response;
        }
        const retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
        if (retryAfter > 0) {
          wait = Math.max(wait, Math.min(60, retryAfter) * 1000);
        }
        if (response.status === 503 || response.status === 429) {
          message = "Server busy, retrying… (your ratings so far are saved)";
        }
      } catch (error) {
        // offline or connection reset: retry below
      }
      statusLine.textContent = message;
      await sleep(wait);
    }
  }

  function setButtons(enabled) {
    buttons.forEach((button) => { button.disabled = !enabled; });
  }

  function updateProgress() {
    const percent = total ? Math.round((100 * done) / total) : 0;
    document.getElementById("progress-bar").style.width = percent + "%";
    document.getElementById("progress").setAttribute("aria-valuenow", String(percent));
    document.getElementById("progress-text").textContent = `Image ${Math.min(done + 1, total)} of ${total}`;
  }

  // The image must be shown 1:1: warn when the window is too small or the page is zoomed.
  function checkFit() {
    const trial = trials[current];
    const problems = [];
    if (window.devicePixelRatio !== 1) {
      problems.push("set your browser zoom to 100% (Ctrl+0) or use a screen without scaling");
    }
    if (trial && (window.innerWidth < trial.width + 16 || window.innerHeight < trial.height + 160)) {
      problems.push(`make the window larger (the image is ${trial.width}×${trial.height} pixels)`);
    }
    sizeWarning.hidden = problems.length === 0;
    sizeWarning.textContent = problems.length ? "To see the image at its true size, please " + problems.join(" and ") + "." : "";
  }

  function preload(index) {
    if (index < trials.length) {
      new Image().src = trials[index].image;
    }
  }

  async function show(index) {
    current = index;
    shownAt = null;
    setButtons(false);
    updateProgress();
    if (current >= trials.length) {
      window.location.reload(); // the server shows the completion code
      return;
    }
    const trial = trials[current];
    const score = trial.calibration_score;
    calibrationLabel.hidden = !score;
    calibrationLabel.textContent = score
      ? `Calibration: this image is an example of ${score} (${config.labels[score]}). Please rate it ${score}.`
      : "";
    buttons.forEach((button) => {
      button.classList.toggle("expected", Boolean(score) && Number(button.dataset.score) === score);
    });
    img.hidden = true;
    loading.hidden = false;
    img.width = trial.width;   // native size: no scaling by the page
    img.height = trial.height;
    img.src = trial.image;
    checkFit();
    try {
      await img.decode();
    } catch (error) {
      await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; });
    }
    if (current !== index) {
      return;
    }
    loading.hidden = true;
    img.hidden = false;
    requestAnimationFrame(() => {
      shownAt = performance.now();
      setButtons(true);
      statusLine.textContent = "";
    });
    preload(current + 1);
  }

  async function rate(score) {
    if (sending || shownAt === null) {
      return;
    }
    sending = true;
    setButtons(false);
    const trial = trials[current];
    const body = JSON.stringify({ trial: trial.token, score: score, response_ms: performance.now() - shownAt });
    statusLine.textContent = "Saving…";
    const response = await fetchRetrying(config.submitUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken },
      body: body,
    });
    const answer = await response.json().catch(() => ({}));
    sending = false;
    if (response.ok) {
      done = answer.done;
      total = answer.total;
      statusLine.textContent = "";
      show(current + 1);
    } else if (answer.error === "rating_conflict") {
      done += 1; // already rated from another tab: move on
      show(current + 1);
    } else {
      statusLine.textContent = answer.message || `The server refused the rating (${response.status}).`;
      if (response.status === 400) {
        setButtons(true);
      }
    }
  }

  buttons.forEach((button) => {
    button.addEventListener("click", () => rate(Number(button.dataset.score)));
  });
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) {
      return;
    }
    if (/^[1-5]$/.test(event.key)) {
      event.preventDefault();
      rate(Number(event.key));
    }
  });
  window.addEventListener("resize", checkFit);

  async function start() {
    const response = await fetchRetrying(config.stateUrl, { headers: { "Accept": "application/json" } });
    const state = await response.json();
    trials = state.trials;
    total = state.total;
    done = state.done;
    show(0);
  }

  start();
})();
