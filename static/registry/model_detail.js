// Model page: the "Compare" button opens /compare/?versions=<name>:<n>,<name>:<n> for the 2 to 4 ticked versions.
// The checkboxes live in the versions table, which htmx swaps when paging, so everything is looked up on demand.
(function () {
  "use strict";
  const MIN = 2;
  const MAX = 4;

  function ticked() {
    return Array.from(document.querySelectorAll("input[data-compare]:checked"));
  }

  function update() {
    const form = document.querySelector("[data-compare-form]");
    if (!form) return;
    const count = ticked().length;
    const button = form.querySelector("button[type=submit]");
    const status = form.querySelector("[data-compare-status]");
    button.disabled = count < MIN || count > MAX;
    if (count === 0) status.textContent = "Tick 2–4 versions to compare them.";
    else if (count < MIN) status.textContent = "1 version ticked; tick at least one more.";
    else if (count > MAX) status.textContent = count + " versions ticked; compare at most " + MAX + ".";
    else status.textContent = count + " versions ticked.";
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches("input[data-compare]")) update();
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.matches("[data-compare-form]")) return;
    event.preventDefault();
    const values = ticked().map(function (box) { return encodeURIComponent(box.value).replace(/%3A/gi, ":"); });
    if (values.length < MIN || values.length > MAX) return;
    window.location.href = form.getAttribute("action") + "?versions=" + values.join(",");
  });

  document.addEventListener("DOMContentLoaded", update);
  document.addEventListener("htmx:afterSettle", update);
})();
