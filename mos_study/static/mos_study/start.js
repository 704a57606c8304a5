// The consent page: refuse, before the form, the devices the study excludes (phones; windows smaller than the
// largest image at one image pixel per device pixel). The server records the refusal and answers the reason's text;
// the hidden fields carry the same report with the consent, so the server checks it again.
(function () {
  "use strict";

  const step = document.getElementById("consent-step");
  if (!step) {
    return;
  }
  const ratio = window.devicePixelRatio || 1;
  const ua = navigator.userAgent || "";
  const mobileHint = navigator.userAgentData ? navigator.userAgentData.mobile : false;
  const smallTouch = navigator.maxTouchPoints > 0 && Math.min(window.screen.width, window.screen.height) < 600;
  const phone = mobileHint || /Mobi|iPhone|iPod|Android.*Mobile|Windows Phone/i.test(ua) || smallTouch;
  const report = {
    phone: phone ? "1" : "0",
    window_width: window.innerWidth,
    window_height: window.innerHeight,
    device_pixel_ratio: ratio,
    screen_width: window.screen.width,
    screen_height: window.screen.height,
    user_agent: ua,
  };
  document.getElementById("device-phone").value = report.phone;
  document.getElementById("device-window-width").value = String(report.window_width);
  document.getElementById("device-window-height").value = String(report.window_height);
  document.getElementById("device-ratio").value = String(ratio);

  const minWidth = Number(step.dataset.minWidth) || 0;
  const minHeight = Number(step.dataset.minHeight) || 0;
  const refusePhones = step.dataset.excludePhones === "1";
  const tooSmall = (minWidth || minHeight) &&
    (window.innerWidth * ratio < minWidth || window.innerHeight * ratio < minHeight);
  if (!(refusePhones && phone) && !tooSmall) {
    return;
  }
  step.hidden = true;
  const notice = document.getElementById("device-refused");
  notice.hidden = false;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
  fetch(step.dataset.refuseUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
    body: JSON.stringify(report),
  })
    .then((response) => response.json())
    .then((answer) => { notice.textContent = answer.message || notice.dataset.fallback || ""; })
    .catch(() => {});
})();
