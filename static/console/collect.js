/* The collect pages' behaviours (no inline script: the Content-Security-Policy allows scripts
 * from this site only):
 * - a button marked data-print prints the page (the receipt's copies, by the print styles);
 *   a page marked data-print-on-load opens the print dialog once it is shown (the original or a
 *   reprint, just recorded);
 * - a form marked data-once is sent once: its submit buttons are disabled once it is sent, so
 *   a double click does not send it twice (the payment's idempotency key would answer a second
 *   send with the first payment anyway). */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-print]");
    if (button) { window.print(); }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-once]")) { return; }
    // Disabled after the browser has read the form (the button pressed is sent with it).
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (button) { button.disabled = true; });
    }, 0);
  });

  if (document.querySelector("[data-print-on-load]")) {
    window.addEventListener("load", function () { window.print(); });
  }

  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-once] button[type=submit]").forEach(function (button) {
      button.disabled = false;
    });
  });
})();
