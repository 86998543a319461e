// Progressive enhancement only: every page works without this file.
// Jobs that are still running move their progress bar (polled once a second); a job page
// reloads once at the job's end, so its result is the server's rendering.
(function () {
  "use strict";
  var FINAL = { COMPLETED: true, FAILED: true };

  function show(node, job) {
    var bar = node.querySelector("progress");
    if (bar) {
      bar.value = job.progress;
      bar.setAttribute("data-progress", String(job.progress));
      bar.textContent = Math.round(job.progress * 100) + "%";
    }
    var percent = node.querySelector(".percent");
    if (percent) percent.textContent = Math.round(job.progress * 100) + "%";
    var status = node.querySelector(".status");
    if (status) {
      status.textContent = job.status_words || job.status;
      status.setAttribute("data-status", job.status);
      status.title = job.status;
    }
    var message = node.querySelector(".message");
    if (message) message.textContent = job.message_shown || job.message;
  }

  function poll(node) {
    var url = node.getAttribute("data-status-url");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (job) {
        show(node, job);
        if (FINAL[job.status]) {
          node.setAttribute("data-final", "1");
          if (node.id === "job" || node.querySelector(".result a") === null) window.location.reload();
        } else {
          window.setTimeout(function () { poll(node); }, 1000);
        }
      })
      .catch(function () { window.setTimeout(function () { poll(node); }, 3000); });
  }

  document.querySelectorAll("[data-status-url][data-final='0']").forEach(function (node) {
    window.setTimeout(function () { poll(node); }, 500);
  });

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = document.getElementById(button.getAttribute("data-copy")).textContent;
      if (navigator.clipboard) navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    });
  });
})();
