// The live task log: polls the portal for new lines and reloads when the task changes state.
(function () {
  "use strict";
  var log = document.getElementById("task-log");
  if (!log) { return; }
  var url = log.dataset.url;
  var after = Number(log.dataset.after || 0);
  var state = log.dataset.state;
  var interruptions = Number(log.dataset.interruptions || 0);
  var terminal = ["Success", "Failed", "Canceled", "TimedOut"];
  var stateEl = document.getElementById("task-state");
  var delay = 1000;

  function append(line) {
    var item = document.createElement("li");
    item.className = "src-" + (line.source || "info");
    if (line.machine) {
      var machine = document.createElement("span");
      machine.className = "machine";
      machine.textContent = line.machine;
      item.appendChild(machine);
      item.appendChild(document.createTextNode(" "));
    }
    item.appendChild(document.createTextNode(line.text));
    log.appendChild(item);
  }

  function poll() {
    fetch(url + "?after=" + after, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) { window.setTimeout(poll, delay * 3); return; }
        body.lines.forEach(function (line) { append(line); after = line.id; });
        if (body.state !== state || body.interruptions !== interruptions) {
          window.location.reload();
          return;
        }
        if (terminal.indexOf(body.state) === -1) { window.setTimeout(poll, delay); }
      })
      .catch(function () { window.setTimeout(poll, delay * 3); });
  }

  if (terminal.indexOf(state) === -1) { window.setTimeout(poll, delay); }
  if (stateEl) { stateEl.setAttribute("aria-live", "polite"); }
}());
