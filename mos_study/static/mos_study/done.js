// The completion page: a button that copies the code (shown only where the browser can copy).
(function () {
  "use strict";

  const button = document.getElementById("copy-code");
  const status = document.getElementById("copy-status");
  if (!button) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(button.dataset.code);
      status.textContent = button.dataset.copied;
    } catch (error) {
      // No clipboard (insecure page, permission refused): select the code so that Ctrl+C / long press copies it.
      const range = document.createRange();
      range.selectNodeContents(document.getElementById("completion-code"));
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      status.textContent = button.dataset.select;
    }
  });
})();
