// The rating page: one image at one image pixel per device pixel, scores by buttons or keys 1-5, the next image
// preloaded. A rating counts only once the server acknowledged it; failed POSTs are retried, so nothing rated is lost.
// Buttons and keys work only once the image has been decoded and is on screen, and not before the study's minimum
// viewing time (earlier keys are ignored, and the page says so). An image that fails to load is retried, then
// reported (to the rater and the server), never rated. A heartbeat keeps the session's lease while the rater acts
// and reports the viewing conditions (screen, window, devicePixelRatio, zoom estimate, user agent).
// A second tab on the same session says that the session continued elsewhere and reloads (rater_page.js); a page
// left behind on another device learns the same from the server (409 session_moved_on / rating_conflict), never
// dropping its score silently. What both rater pages share is in rater_page.js.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("rate-config").textContent);
  const img = document.getElementById("stimulus");
  const loading = document.getElementById("loading");
  const buttons = Array.from(document.querySelectorAll("button.score"));
  const sizeWarning = document.getElementById("size-warning");
  const calibrationLabel = document.getElementById("calibration-label");

  let trials = [];      // unrated trials, in session order
  let current = 0;      // index into trials
  let done = 0;
  let total = 0;
  let shownAt = null;   // performance.now() when the current image appeared; null while none is shown
  const IMAGE_ATTEMPTS = 3;

  const page = window.srmosRaterPage(config, { buttons: buttons, pending: () => trials.slice(current) });
  const { statusLine, t, sleep, setButtons } = page;
  const updateProgress = () => page.updateProgress(done, total);

  // One image pixel per device pixel: the CSS size is the natural size divided by devicePixelRatio (which also
  // follows the browser zoom), so a 2x screen or 150 % zoom shows the image unscaled. Warn when it does not fit.
  function fitImage() {
    const trial = trials[current];
    if (!trial) {
      return;
    }
    const ratio = window.devicePixelRatio || 1;
    const cssWidth = trial.width / ratio;
    const cssHeight = trial.height / ratio;
    img.width = trial.width;   // the attributes keep the natural size; the CSS size maps it 1:1 to device pixels
    img.height = trial.height;
    img.style.width = cssWidth + "px";
    img.style.height = cssHeight + "px";
    const tooSmall = window.innerWidth < cssWidth + 16 || window.innerHeight < cssHeight + 160;
    sizeWarning.hidden = !tooSmall;
    sizeWarning.textContent = tooSmall
      ? t("sizeWarning")
      : "";
  }

  async function loadImage(trial, attempt) {
    const url = attempt ? `${trial.image}?attempt=${attempt}` : trial.image;
    img.src = url;
    try {
      await img.decode();
    } catch (error) {
      // decode() rejects for broken images (and in a few browsers for other reasons): trust only complete pixels
    }
    return img.complete && img.naturalWidth === trial.width && img.naturalHeight === trial.height;
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
      ? t("calibration", { score: score, label: config.labels[score] })
      : "";
    buttons.forEach((button) => {
      button.classList.toggle("expected", Boolean(score) && Number(button.dataset.score) === score);
    });
    img.hidden = true;
    loading.hidden = false;
    loading.textContent = t("loading");
    fitImage();
    let loaded = false;
    for (let attempt = 0; attempt < IMAGE_ATTEMPTS && !loaded; attempt++) {
      if (attempt) {
        statusLine.textContent = t("imageRetry");
        await sleep(500 * 2 ** attempt);
      }
      loaded = await loadImage(trial, attempt);
      if (current !== index) {
        return;
      }
    }
    if (!loaded) {
      page.imageFailed(() => show(index));  // reported, never rated: the buttons stay disabled
      return;
    }
    loading.hidden = true;
    img.hidden = false;
    requestAnimationFrame(() => {
      if (current !== index) {
        return;
      }
      shownAt = performance.now();
      page.opened(() => current === index);
    });
    preload(current + 1);
  }

  function rate(score) {
    page.answer(trials[current], { score: score }, shownAt, (answer) => {
      done = answer.done;
      total = answer.total;
      show(current + 1);
    });
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
  window.addEventListener("resize", fitImage);  // zooming changes devicePixelRatio and fires resize

  async function start() {
    const state = await page.loadState();  // and a heartbeat: the viewing conditions, and the lease
    trials = state.trials;
    total = state.total;
    done = state.done;
    show(0);
  }

  start();
})();
