// The Lab page, live: the server sends the benches' HTML (rendered and escaped by the server) whenever
// it changes, by server-sent events; EventSource reconnects by itself after a network drop.
(function () {
  var box = document.getElementById("benches");
  var dot = document.getElementById("live");
  if (!box || !window.EventSource) { return; }
  var source = new EventSource(box.getAttribute("data-events"));
  source.onopen = function () { dot.classList.add("on"); dot.title = "live updates on"; };
  source.onerror = function () { dot.classList.remove("on"); dot.title = "reconnecting…"; };
  source.onmessage = function (event) {
    box.innerHTML = JSON.parse(event.data).html;
    dot.classList.add("on");
  };
})();
