// The pairwise page: two versions of one image at one image pixel per device pixel, side by side where both fit in
// the window, else one at a time in the same place with a toggle (T or space). The rater chooses with Left/Right or
// 1/2 (0 or Down: no preference, where the study allows it) or the buttons. The same gating as the ACR page
// (rate.js): choices work only once both images are decoded and have been on screen (in toggle mode: both sides
// shown at least once), and not before the study's minimum viewing time; failed POSTs are retried, so no choice is
// lost; failed images are retried, then reported, never chosen; a heartbeat keeps the session's lease. The page posts
// "left", "right" or "none": which side shows which stimulus is known to the server only. What both rater pages share
// (retries, heartbeat, second-tab check, progress, the answer path) is in rater_page.js.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("compare-config").textContent);
  const sides = ["left", "right"];
  const images = { left: document.getElementById("image-left"), right: document.getElementById("image-right") };
  const boxes = { left: document.getElementById("side-left"), right: document.getElementById("side-right") };
  const loading = document.getElementById("loading");
  const buttons = Array.from(document.querySelectorAll("button.choice"));
  const toggleButton = document.getElementById("toggle-side");
  const sizeWarning = document.getElementById("size-warning");
  const calibrationLabel = document.getElementById("calibration-label");
  const showingLine = document.getElementById("showing");

  let trials = [];
  let current = 0;
  let done = 0;
  let total = 0;
  let loaded = false;       // both images of the current trial decoded
  let inPlace = false;      // one side at a time (the pair does not fit side by side)
  let visible = "left";     // the side shown in place
  let seen = new Set();     // sides that have been on screen for the current trial
  let shownAt = null;       // performance.now() once both sides have been on screen; null before
  const IMAGE_ATTEMPTS = 3;
  const GAP_PX = 48;        // CSS pixels between and around the two images
  const CHROME_PX = 200;    // CSS pixels of page above and below the images (progress, labels, buttons)

  const page = window.srmosRaterPage(config, { buttons: buttons, pending: () => trials.slice(current) });
  const { statusLine, t, sleep, setButtons } = page;
  const updateProgress = () => page.updateProgress(done, total);

  // One image pixel per device pixel (CSS size = natural size / devicePixelRatio). Side by side where both fit in
  // the window, else one at a time in the same place (and a warning while even one does not fit).
  function layout() {
    const trial = trials[current];
    if (!trial) {
      return;
    }
    const ratio = window.devicePixelRatio || 1;
    sides.forEach((side) => {
      const img = images[side];
      img.width = trial[side].width;
      img.height = trial[side].height;
      img.style.width = trial[side].width / ratio + "px";
      img.style.height = trial[side].height / ratio + "px";
    });
    const width = (trial.left.width + trial.right.width) / ratio + GAP_PX;
    const height = Math.max(trial.left.height, trial.right.height) / ratio;
    const fitsBoth = window.innerWidth >= width + GAP_PX && window.innerHeight >= height + CHROME_PX;
    inPlace = !fitsBoth;
    const fitsOne = window.innerWidth >= width - trial.right.width / ratio && window.innerHeight >= height + CHROME_PX;
    sizeWarning.hidden = fitsBoth;
    sizeWarning.textContent = fitsBoth ? "" : t("sizeWarning");
    sizeWarning.classList.toggle("severe", !fitsOne);
    toggleButton.hidden = !inPlace;
    showSides();
  }

  function showSides() {
    document.getElementById("pair").classList.toggle("in-place", inPlace);
    sides.forEach((side) => {
      const shown = loaded && (!inPlace || side === visible);
      boxes[side].hidden = loaded && !shown;
      images[side].hidden = !shown;
    });
    showingLine.hidden = !(loaded && inPlace);
    showingLine.textContent = loaded && inPlace ? t("showing", { side: t(visible) }) : "";
    if (loaded) {
      markSeen();
    }
  }

  // A side counts as seen once it has been painted; choices open once both have been.
  function markSeen() {
    const index = current;
    const now = inPlace ? [visible] : sides;
    requestAnimationFrame(() => {
      if (current !== index || !loaded) {
        return;
      }
      now.forEach((side) => seen.add(side));
      if (shownAt === null && seen.size === 2) {
        shownAt = performance.now();
        page.opened(() => current === index);
      }
    });
  }

  function toggle() {
    page.activity();
    if (!inPlace || !loaded) {
      return;
    }
    visible = visible === "left" ? "right" : "left";
    showSides();
  }

  async function loadSide(img, view, attempt) {
    img.src = attempt ? `${view.image}?attempt=${attempt}` : view.image;
    try {
      await img.decode();
    } catch (error) {
      // trust only complete pixels, checked below
    }
    return img.complete && img.naturalWidth === view.width && img.naturalHeight === view.height;
  }

  function preload(index) {
    if (index < trials.length) {
      sides.forEach((side) => { new Image().src = trials[index][side].image; });
    }
  }

  async function show(index) {
    current = index;
    shownAt = null;
    loaded = false;
    seen = new Set();
    visible = "left";
    setButtons(false);
    updateProgress();
    if (current >= trials.length) {
      window.location.reload(); // the server shows the completion code
      return;
    }
    const trial = trials[current];
    calibrationLabel.hidden = !trial.better;
    calibrationLabel.textContent = trial.better ? t("calibration", { side: t(trial.better) }) : "";
    buttons.forEach((button) => {
      button.classList.toggle("expected", Boolean(trial.better) && button.dataset.side === trial.better);
    });
    loading.hidden = false;
    loading.textContent = t("loading");
    layout();
    let ok = false;
    for (let attempt = 0; attempt < IMAGE_ATTEMPTS && !ok; attempt++) {
      if (attempt) {
        statusLine.textContent = t("imageRetry");
        await sleep(500 * 2 ** attempt);
      }
      const results = await Promise.all(sides.map((side) => loadSide(images[side], trial[side], attempt)));
      ok = results.every(Boolean);
      if (current !== index) {
        return;
      }
    }
    if (!ok) {
      page.imageFailed(() => show(index));  // reported, never chosen
      return;
    }
    loading.hidden = true;
    loaded = true;
    layout();
    preload(current + 1);
  }

  function choose(side) {
    if (side === "none" && !config.allowTie) {
      page.activity();
      return;
    }
    page.answer(trials[current], { choice: side }, shownAt, (answer) => {
      done = answer.done;
      total = answer.total;
      show(current + 1);
    });
  }

  const KEYS = { ArrowLeft: "left", "1": "left", ArrowRight: "right", "2": "right", ArrowDown: "none", "0": "none" };
  buttons.forEach((button) => {
    button.addEventListener("click", () => choose(button.dataset.side));
  });
  toggleButton.addEventListener("click", toggle);
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) {
      return;
    }
    if (event.key in KEYS) {
      event.preventDefault();
      choose(KEYS[event.key]);
    } else if (event.key === " " || event.key === "t" || event.key === "T") {
      event.preventDefault();  // space would scroll the page
      toggle();
    }
  });
  window.addEventListener("resize", layout);

  async function start() {
    const state = await page.loadState();
    trials = state.trials;
    total = state.total;
    done = state.done;
    show(0);
  }

  start();
})();
