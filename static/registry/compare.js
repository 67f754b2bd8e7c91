// The comparison and dataset pages: "only differences" switches and selects that apply themselves.
// Markup: <input type="checkbox" data-only-diff="TABLE_ID"> toggles the class "only-diff" on #TABLE_ID, whose CSS
// hides the rows marked data-same="1"; <select data-autosubmit> submits its form when changed.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    const target = event.target;
    if (target.matches("input[data-only-diff]")) {
      const table = document.getElementById(target.dataset.onlyDiff);
      if (table) table.classList.toggle("only-diff", target.checked);
    } else if (target.matches("select[data-autosubmit]") && target.form) {
      target.form.requestSubmit();
    }
  });
})();
