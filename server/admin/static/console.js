// gatehouse SOA Admin console. Everything works without this script; it
// adds a copy button for consumer keys, filters for long lists and
// confirmations before destructive actions. No library, no inline script.
"use strict";
document.documentElement.classList.add("js");
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var el = document.getElementById(btn.getAttribute("data-copy"));
      var status = document.getElementById("copy-status");
      var text = el ? el.textContent.trim() : "";
      var done = function (msg) { if (status) { status.textContent = msg; } };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { done("Copied."); }, function () {
          selectText(el); done("Selected: press Ctrl+C (⌘C) to copy.");
        });
      } else {
        selectText(el); done("Selected: press Ctrl+C (⌘C) to copy.");
      }
    });
  });
  filter("odata-filter", "#odata option");
  filter("grid-filter", "#grid tbody tr");
  document.querySelectorAll("form.js-confirm").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (!window.confirm(f.getAttribute("data-confirm"))) { ev.preventDefault(); }
    });
  });
});
function selectText(el) {
  if (!el) { return; }
  var r = document.createRange();
  r.selectNodeContents(el);
  var s = window.getSelection();
  s.removeAllRanges();
  s.addRange(r);
}
function filter(inputID, selector) {
  var input = document.getElementById(inputID);
  if (!input) { return; }
  input.addEventListener("input", function () {
    var q = input.value.trim().toLowerCase();
    document.querySelectorAll(selector).forEach(function (el) {
      el.hidden = q !== "" && el.textContent.toLowerCase().indexOf(q) < 0;
    });
  });
}
