// Segment builder on the campaign form: the recipient count follows every change
// (asked of /editor/segments/count a moment after the last one), and choosing a saved
// segment fills the builder at once. Without this script the buttons do the same.
(function () {
  "use strict";
  const form = document.getElementById("campaign-form");
  if (!form) return;
  const shown = document.getElementById("live-count");
  const saved = document.getElementById("saved-segment");
  const WAIT_MS = 300;
  let timer = null;
  let asked = 0;

  function query() {
    const params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (name === "list" || name.startsWith("seg.")) params.append(name, value);
    });
    return params;
  }

  async function count() {
    const params = query();
    const mine = ++asked;
    if (!params.getAll("list").length) {
      shown.textContent = "—";
      return;
    }
    try {
      const answer = await fetch("/editor/segments/count?" + params.toString(), {
        credentials: "same-origin",
        headers: { accept: "application/json" },
      });
      const data = await answer.json();
      if (mine === asked) shown.textContent = "count" in data ? String(data.count) : data.error;
    } catch (error) {
      if (mine === asked) shown.textContent = "—";
    }
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(count, WAIT_MS);
  }

  function fill(definition) {
    form.querySelectorAll("select[data-field]").forEach(function (select) {
      const wanted = definition[select.dataset.field] || [];
      wanted.forEach(function (value) {
        if (![...select.options].some((o) => o.value === value)) select.add(new Option(value, value));
      });
      [...select.options].forEach(function (option) {
        option.selected = wanted.includes(option.value);
      });
    });
  }

  form.addEventListener("change", function (event) {
    if (event.target === saved) {
      const option = saved.selectedOptions[0];
      fill(option && option.dataset.definition ? JSON.parse(option.dataset.definition) : {});
    }
    if (event.target.name === "list" || event.target === saved || event.target.dataset.field) later();
  });
  count();
})();
