// What the two rater pages share (rate.js: ACR scores; compare.js: pairwise choices): the translated words, fetches
// retried until the server answers, the buttons, the progress bar, the short "ignored" notice, the heartbeat that
// keeps the session's lease while the rater acts (with the viewing conditions), the answer path (gated on the
// viewing time, posted until the server acknowledges it), the failed-image notice, and the second-tab check: each
// answer is announced on a BroadcastChannel, and a tab that still shows a trial answered elsewhere says that the
// session continued elsewhere and reloads.
window.srmosRaterPage = function (config, options) {
  "use strict";

  const buttons = options.buttons;   // the answer buttons
  const pending = options.pending;   // () => the trials this page still has to show, for the second-tab check
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const statusLine = document.getElementById("status");
  const buttonBox = document.getElementById("buttons");
  const loading = document.getElementById("loading");
  const minViewMs = Number(config.minViewMs) || 0;
  const HEARTBEAT_MS = 60000;
  const channel = "BroadcastChannel" in window && config.submitUrl ? new BroadcastChannel("srmos:" + config.submitUrl) : null;
  let lastActivity = performance.now();
  let lastHeartbeat = -Infinity;
  let sending = false;
  const page = { csrfToken: csrfToken, statusLine: statusLine, imageFailures: 0, movedOn: false };

  // Rater-facing words come from the page (Django's translation catalogue, config.text); {name} fills values in.
  page.t = function (key, values) {
    let text = (config.text && config.text[key]) || key;
    Object.entries(values || {}).forEach(([name, value]) => { text = text.split("{" + name + "}").join(String(value)); });
    return text;
  };
  const t = page.t;
  page.sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  page.setButtons = function (enabled) {
    buttons.forEach((button) => { button.disabled = !enabled; });
  };

  // The session went on in another tab or on another device: say so, then reload to continue where it is.
  page.continuedElsewhere = function () {
    if (page.movedOn) {
      return;
    }
    page.movedOn = true;
    page.setButtons(false);
    const notice = document.getElementById("moved-on");
    notice.hidden = false;
    notice.textContent = t("movedOn");
    setTimeout(() => window.location.reload(), 2500);
  };

  if (channel) {
    channel.onmessage = (event) => {
      const answered = event.data && event.data.rated;
      if (answered && pending().some((trial) => trial.token === answered)) {
        page.continuedElsewhere();
      }
    };
  }

  // Tell this session's other tabs that a trial was answered here.
  page.announce = function (token) {
    if (channel) {
      channel.postMessage({ rated: token });
    }
  };

  // fetch, retried on network errors, 5xx and 429 with growing waits (at least the server's Retry-After); other
  // answers are returned as they are. 503/429 mean the server is busy (e.g. its database is unreachable).
  page.fetchRetrying = async function (url, fetchOptions) {
    for (let attempt = 0; ; attempt++) {
      let wait = Math.min(10000, 500 * 2 ** attempt);
      let message = t("connection");
      try {
        const response = await fetch(url, fetchOptions);
        if (response.status < 500 && response.status !== 429) {
          return response;
        }
        const retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
        if (retryAfter > 0) {
          wait = Math.max(wait, Math.min(60, retryAfter) * 1000);
        }
        if (response.status === 503 || response.status === 429) {
          message = t("busy");
        }
      } catch (error) {
        // offline or connection reset: retry below
      }
      statusLine.textContent = message;
      await page.sleep(wait);
    }
  };

  page.updateProgress = function (done, total) {
    const percent = total ? Math.round((100 * done) / total) : 0;
    document.getElementById("progress-bar").style.width = percent + "%";
    document.getElementById("progress").setAttribute("aria-valuenow", String(percent));
    document.getElementById("progress-text").textContent = t("progress", { n: Math.min(done + 1, total), total: total });
  };

  page.viewing = function () {
    const ratio = window.devicePixelRatio || 1;
    return {
      screen_width: window.screen.width,
      screen_height: window.screen.height,
      window_width: window.innerWidth,
      window_height: window.innerHeight,
      device_pixel_ratio: ratio,
      // Desktop browsers: outer/inner width grows with the page zoom (absent in some mobile and headless ones).
      zoom_estimate: window.outerWidth > 0 ? window.outerWidth / window.innerWidth : ratio,
      user_agent: navigator.userAgent,
      image_failures: page.imageFailures,
    };
  };

  // The lease of the session is kept only while the rater acts: a heartbeat at most every minute after activity.
  page.heartbeat = function (force) {
    const now = performance.now();
    if (!config.heartbeatUrl) {
      return;  // a researcher's preview: no session, no lease
    }
    if (!force && (now - lastHeartbeat < HEARTBEAT_MS || now - lastActivity > HEARTBEAT_MS)) {
      return;
    }
    lastHeartbeat = now;
    fetch(config.heartbeatUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify({ viewing: page.viewing() }),
    }).catch(() => {});  // a lost heartbeat costs nothing: the next answer extends the lease too
  };

  page.activity = function () {
    lastActivity = performance.now();
  };

  // A short visible notice that a key or click was ignored.
  page.ignored = function (message) {
    statusLine.textContent = message;
    statusLine.classList.remove("flash");
    void statusLine.offsetWidth;  // restart the animation
    statusLine.classList.add("flash");
  };

  // The trial is on screen: open the answers (dimmed until the study's minimum viewing time has passed).
  page.opened = function (isCurrent) {
    page.setButtons(true);
    statusLine.textContent = "";
    buttonBox.classList.toggle("waiting", minViewMs > 0);
    if (minViewMs > 0) {
      setTimeout(() => { if (isCurrent()) { buttonBox.classList.remove("waiting"); } }, minViewMs);
    }
  };

  // An image that would not load after its retries: reported (heartbeat), never answered; the rater may try again.
  page.imageFailed = function (retryShow) {
    page.imageFailures += 1;
    page.heartbeat(true);
    statusLine.textContent = "";
    loading.textContent = t("imageFailed") + " ";
    const retry = document.createElement("button");
    retry.type = "button";
    retry.id = "retry-image";
    retry.className = "link";
    retry.textContent = t("tryAgain");
    retry.addEventListener("click", retryShow);
    loading.appendChild(retry);
    loading.appendChild(document.createTextNode("."));
  };

  // Post one answer (``fields``: {score} or {choice}) to the trial shown since ``shownAt``; ignored (and said so)
  // before the trial is on screen or its minimum viewing time has passed. ``accepted(answer)`` runs once the
  // server has stored it; an answer stored elsewhere (another tab or device) reloads instead of moving on silently.
  page.answer = async function (trial, fields, shownAt, accepted) {
    page.activity();
    if (sending || page.movedOn) {
      return;
    }
    if (shownAt === null) {
      page.ignored(t("wait"));
      return;
    }
    if (performance.now() - shownAt < minViewMs) {
      page.ignored(t("tooFast"));
      return;
    }
    sending = true;
    page.setButtons(false);
    const body = JSON.stringify({ trial: trial.token, ...fields, response_ms: performance.now() - shownAt });
    statusLine.textContent = t("saving");
    const response = await page.fetchRetrying(config.submitUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken },
      body: body,
    });
    const answer = await response.json().catch(() => ({}));
    sending = false;
    if (response.ok) {
      statusLine.textContent = "";
      page.announce(trial.token);
      accepted(answer);
    } else if (answer.error === "session_moved_on" || answer.error === "rating_conflict") {
      page.continuedElsewhere();
    } else {
      statusLine.textContent = answer.message || t("refused", { status: response.status });
      if (response.status === 400) {
        page.setButtons(true);
      }
    }
  };

  // The session's unanswered trials and progress; the heartbeat reports the viewing conditions at once.
  page.loadState = async function () {
    const response = await page.fetchRetrying(config.stateUrl, { headers: { "Accept": "application/json" } });
    const state = await response.json();
    page.heartbeat(true);
    return state;
  };

  ["pointerdown", "pointermove", "keydown", "touchstart", "scroll"].forEach((name) => {
    window.addEventListener(name, page.activity, { passive: true });
  });
  setInterval(() => page.heartbeat(false), 15000);
  return page;
};
