// Live lists: the element marked data-live is fetched again (from the URL it
// names, through htmx) whenever /console/live says the data changed. The
// pause button closes the stream and leaves the list as it is; resuming
// reopens it and fetches the list once. Without JavaScript none of this
// runs, the button stays hidden and the page is a plain page.
(function () {
  var region = document.querySelector("[data-live]");
  var button = document.getElementById("live-toggle");
  var status = document.getElementById("live-status");
  if (!region || !button || !status || !window.EventSource || !window.htmx) return;
  var source = null;
  var waiting = false;
  function refresh() {
    var current = document.getElementById(region.id);
    // Swapping the list under a focused control would lose the focus.
    if (current && current.contains(document.activeElement)) { waiting = true; return; }
    waiting = false;
    htmx.ajax("GET", region.getAttribute("data-live"),
      { target: "#" + region.id, select: "#" + region.id, swap: "outerHTML" });
  }
  document.addEventListener("focusout", function () { if (waiting && source) setTimeout(refresh, 0); });
  function show(live) {
    button.textContent = live ? "Pause live updates" : "Resume live updates";
    button.setAttribute("aria-pressed", live ? "false" : "true");
    status.textContent = live ? "Live: the list updates when deliveries change." : "Paused: the list does not update.";
  }
  function start() {
    source = new EventSource("/console/live");
    source.addEventListener("change", refresh);
    source.addEventListener("error", function () {
      // Closed for good (the session ended, say); the browser retries otherwise.
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        show(false);
        status.textContent = "Live updates stopped; reload the page.";
      }
    });
    show(true);
  }
  function stop() {
    if (source) source.close();
    source = null;
    show(false);
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    if (source) { stop(); } else { start(); refresh(); }
  });
  start();
})();
