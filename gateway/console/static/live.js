// Live progress of one run over the API's SSE stream (same origin, the session cookie): each event is listed,
// and the page reloads when the run moves on, so the stages and buttons shown are the current ones.
(function () {
  const list = document.getElementById("live");
  if (!list || !window.EventSource) { return; }
  const source = new EventSource(list.dataset.url);
  const kinds = ["stage_started", "stage_finished", "subtask_finished", "run_status", "run_resumed", "run_finished"];
  kinds.forEach(function (kind) {
    source.addEventListener(kind, function (message) {
      const item = document.createElement("li");
      item.textContent = kind + " " + message.data;
      list.appendChild(item);
      if (kind === "run_finished" || kind === "run_status") { source.close(); setTimeout(function () { location.reload(); }, 1500); }
    });
  });
})();
