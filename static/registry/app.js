// Behaviour every page shares. No inline scripts anywhere (the Content-Security-Policy forbids them): pages mark
// elements with data- attributes and this file gives them life, again after htmx swaps a fragment in.
//   [data-menu-toggle]        opens and closes the top bar's menu on narrow screens
//   [data-copy="TEXT"]        copies TEXT (or the text of #data-copy-from) and says so
//   [role=tab][aria-controls] switches tab panels within its [role=tablist]
//   [data-reveal="ID"]        shows #ID (a confirmation, an edit form) and focuses its first field; [data-hide="ID"] hides it
//   form[data-compare-form]   the "Compare (n)" bar: collects the ticked input[data-compare] boxes of the page
//   [data-focus-on-load]      takes focus when swapped in (status messages after an action)
(function () {
  "use strict";
  document.documentElement.classList.remove("no-js");

  // --- The top bar's menu -------------------------------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    const toggle = event.target.closest("[data-menu-toggle]");
    if (!toggle) return;
    const bar = toggle.closest("[data-topbar]");
    const open = !bar.classList.contains("open");
    bar.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });

  // --- Copy buttons -------------------------------------------------------------------------------------------------
  function copyText(text, button) {
    const done = function () {
      const before = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = before; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  function fallbackCopy(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the text stays selectable on the page */ }
    area.remove();
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy], [data-copy-from]");
    if (!button) return;
    const source = button.dataset.copyFrom ? document.getElementById(button.dataset.copyFrom) : null;
    copyText(source ? source.textContent.trim() : button.dataset.copy, button);
  });

  // --- Tabs ---------------------------------------------------------------------------------------------------------
  function selectTab(tab) {
    const list = tab.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach(function (other) {
      const selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      const panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
  }

  document.addEventListener("click", function (event) {
    const tab = event.target.closest("[role=tab][aria-controls]");
    if (tab) selectTab(tab);
  });
  document.addEventListener("keydown", function (event) {
    const tab = event.target.closest && event.target.closest("[role=tab][aria-controls]");
    if (!tab || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) return;
    const tabs = Array.from(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
    const next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    selectTab(next);
    next.focus();
    event.preventDefault();
  });

  // --- Reveal and hide (confirmations, edit forms) ------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    const reveal = event.target.closest("[data-reveal]");
    const hide = event.target.closest("[data-hide]");
    if (reveal) {
      const target = document.getElementById(reveal.dataset.reveal);
      if (!target) return;
      target.hidden = false;
      reveal.setAttribute("aria-expanded", "true");
      const field = target.querySelector("textarea, input:not([type=hidden]), select, button");
      if (field) field.focus();
    } else if (hide) {
      const target = document.getElementById(hide.dataset.hide);
      if (!target) return;
      target.hidden = true;
      const opener = document.querySelector('[data-reveal="' + hide.dataset.hide + '"]');
      if (opener) { opener.setAttribute("aria-expanded", "false"); opener.focus(); }
    }
  });

  // --- Key/value rows (tags): add and remove a row -------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    const add = event.target.closest("[data-add-row]");
    const remove = event.target.closest("[data-remove-row]");
    if (add) {
      const rows = document.getElementById(add.dataset.addRow);
      const template = rows && rows.querySelector("template");
      if (!template) return;
      const row = template.content.firstElementChild.cloneNode(true);
      rows.insertBefore(row, template);
      row.querySelector("input").focus();
    } else if (remove) {
      const row = remove.closest(".kv-row");
      const next = row.nextElementSibling && row.nextElementSibling.querySelector("input");
      const rows = row.parentElement;
      row.remove();
      (next || rows.closest("form").querySelector("[data-add-row]")).focus();
    }
  });

  // --- The compare bar ----------------------------------------------------------------------------------------------
  // Boxes: <input type=checkbox data-compare value="model:3" | value="RUN_ID">; the bar: <form data-compare-form
  // data-param="versions|runs" data-min=2 data-max=4 hidden> with [data-compare-count], [data-compare-status] and a
  // submit button. Ticks survive paging through sessionStorage, keyed by the form's data-scope.
  function store(form) {
    try { return JSON.parse(sessionStorage.getItem("compare:" + form.dataset.scope) || "[]"); } catch (e) { return []; }
  }
  function save(form, values) {
    try { sessionStorage.setItem("compare:" + form.dataset.scope, JSON.stringify(values)); } catch (e) { /* private mode */ }
  }

  function updateCompare() {
    const form = document.querySelector("[data-compare-form]");
    if (!form) return;
    let picked = store(form);
    document.querySelectorAll("input[data-compare]").forEach(function (box) {
      box.checked = picked.indexOf(box.value) !== -1;
    });
    const min = Number(form.dataset.min || 2);
    const max = Number(form.dataset.max || 4);
    const count = picked.length;
    form.hidden = count === 0;
    document.body.classList.toggle("comparing", count > 0);
    form.querySelector("[data-compare-count]").textContent = String(count);
    const status = form.querySelector("[data-compare-status]");
    const noun = form.dataset.noun || "builds";
    if (count < min) status.textContent = "Tick at least " + min + " " + noun + " to compare.";
    else if (count > max) status.textContent = "Compare at most " + max + " " + noun + "; untick " + (count - max) + ".";
    else status.textContent = picked.join(", ") + " (Enter on a ticked box compares them)";
    form.querySelector("button[type=submit]").disabled = count < min || count > max;
  }

  document.addEventListener("change", function (event) {
    const box = event.target;
    if (!box.matches("input[data-compare]")) return;
    const form = document.querySelector("[data-compare-form]");
    if (!form) return;
    let picked = store(form).filter(function (value) { return value !== box.value; });
    if (box.checked) picked.push(box.value);
    save(form, picked);
    updateCompare();
  });

  // Enter on a ticked box compares: the bar's button is a few Shift+Tabs away, but this is quicker.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target.matches || !event.target.matches("input[data-compare]")) return;
    const form = document.querySelector("[data-compare-form]");
    if (!form) return;
    event.preventDefault();
    if (!form.querySelector("button[type=submit]").disabled) form.requestSubmit();
  });

  document.addEventListener("click", function (event) {
    const clear = event.target.closest("[data-compare-clear]");
    if (!clear) return;
    const form = clear.closest("[data-compare-form]");
    save(form, []);
    updateCompare();
    const first = document.querySelector("input[data-compare]");
    if (first) first.focus();
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.matches("[data-compare-form]")) return;
    event.preventDefault();
    const values = store(form);
    if (values.length < Number(form.dataset.min || 2) || values.length > Number(form.dataset.max || 4)) return;
    const encoded = values.map(function (value) { return encodeURIComponent(value).replace(/%3A/gi, ":"); });
    window.location.href = form.getAttribute("action") + "?" + form.dataset.param + "=" + encoded.join(",");
  });

  // --- Scrolling boxes take keyboard focus, so that keyboard users can scroll them too ------------------------------------
  function focusableScrollers() {
    document.querySelectorAll(".table-wrap, table.data, pre, .file-preview").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1) {
        if (!box.hasAttribute("tabindex")) box.setAttribute("tabindex", "0");
      } else if (box.getAttribute("tabindex") === "0" && !box.matches("pre")) {
        box.removeAttribute("tabindex");
      }
    });
  }
  let resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(focusableScrollers, 200);
  });

  // --- After a swap: focus what asks for it, refresh the compare bar ---------------------------------------------------
  function settle() {
    // htmx fires afterSettle on the swapped target, which for an outerHTML swap is the element just replaced: look
    // for the new element in the document, and take the marker off once it has the focus.
    const focus = document.querySelector("[data-focus-on-load]");
    if (focus) {
      if (!focus.hasAttribute("tabindex")) focus.setAttribute("tabindex", "-1");
      focus.removeAttribute("data-focus-on-load");
      focus.focus();
    }
    updateCompare();
    focusableScrollers();
  }

  document.addEventListener("DOMContentLoaded", function () { updateCompare(); focusableScrollers(); });
  window.addEventListener("load", focusableScrollers);
  document.addEventListener("htmx:afterSettle", settle);
  window.addEventListener("pageshow", updateCompare);
})();
