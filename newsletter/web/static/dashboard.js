// Campaign dashboard: poll the progress once a second while the campaign is active,
// show only the buttons its status allows, and ask before cancelling.
(function () {
  "use strict";
  const root = document.getElementById("dashboard");
  if (!root) return;
  const labels = JSON.parse(document.getElementById("status").dataset.labels || "{}");

  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });

  function show(data) {
    Object.keys(data.counts).forEach(function (name) {
      const cell = document.getElementById("count-" + name);
      if (cell) cell.textContent = String(data.counts[name]);
    });
    document.getElementById("rate").textContent = String(data.rate);
    document.getElementById("status").textContent = labels[data.status] || data.status;
    document.getElementById("status-reason").textContent = data.status_reason || "";
    const bar = document.getElementById("bar");
    bar.max = Math.max(1, data.total);
    bar.value = data.done;
    root.dataset.status = data.status;
    // Only the buttons the campaign's status allows now (the server refuses the others).
    document.querySelectorAll("form.steer").forEach(function (form) {
      form.hidden = (data.actions || []).indexOf(form.dataset.action) < 0;
    });
  }

  async function poll() {
    try {
      const response = await fetch(root.dataset.progressUrl, { credentials: "same-origin" });
      if (response.ok) {
        const data = await response.json();
        show(data);
        if (!data.active) return;
      }
    } catch (e) { /* the server restarts: try again */ }
    window.setTimeout(poll, 1000);
  }
  poll();
})();
