/* Staffer portal: live task timeline.
 *
 * The page renders every event it knows. This script opens the organization's
 * socket (/ws/orgs/<slug>/events/); when an event of this task is announced it
 * asks the API for everything after the last sequence number shown
 * (GET .../tasks/<id>/events/?after=N) and appends it. The socket only says
 * "something happened": the database is the record, so a dropped message, a
 * reconnect or a sleeping tab never loses an event, and none is shown twice.
 * Without JavaScript the page still works; it just does not update by itself.
 */
(function () {
  "use strict";

  var timeline = document.getElementById("timeline");
  if (!timeline || !window.fetch) {
    return;
  }

  var taskId = Number(timeline.dataset.task);
  var lastSequence = Number(timeline.dataset.lastSequence) || 0;
  var eventsUrl = timeline.dataset.eventsUrl;
  var wsPath = timeline.dataset.wsPath;
  var timeZone = timeline.dataset.timezone || "UTC";
  var liveStatus = document.getElementById("live-status");
  var statusBadge = document.getElementById("task-status");
  var LABELS = {
    pending: "Pending", queued: "Queued", in_progress: "In progress", paused: "Paused", blocked: "Blocked",
    completed: "Completed", failed: "Failed", skipped: "Skipped", cancelled: "Cancelled"
  };

  var fetching = false;
  var fetchAgain = false;
  var socket = null;
  var retryDelay = 1000;
  var reconnectTimer = null;

  function say(text, reloadLink) {
    if (!liveStatus) {
      return;
    }
    liveStatus.textContent = text;
    if (reloadLink) {
      var link = document.createElement("a");
      link.href = window.location.pathname;
      link.textContent = "Reload";
      liveStatus.appendChild(document.createTextNode(" "));
      liveStatus.appendChild(link);
    }
  }

  var formatter = null;
  try {
    formatter = new Intl.DateTimeFormat("en-CA", {
      timeZone: timeZone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"
    });
  } catch (err) {
    formatter = null;
  }

  function formatTime(iso) {
    var date = new Date(iso);
    if (!formatter || isNaN(date.getTime())) {
      return iso || "";
    }
    var parts = {};
    formatter.formatToParts(date).forEach(function (part) { parts[part.type] = part.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute + ":" + parts.second;
  }

  function scalar(value) {
    if (value === true) { return "True"; }
    if (value === false) { return "False"; }
    return String(value);
  }

  /* Mirrors automation.views.tasks.event_summary. */
  function summary(type, payload) {
    payload = payload && typeof payload === "object" && !Array.isArray(payload) ? payload : {};
    if (type === "status_changed") {
      var text = (payload.from || "?") + " \u2192 " + (payload.to || "?");
      return payload.reason ? text + ": " + payload.reason : text;
    }
    var parts = [];
    Object.keys(payload).forEach(function (key) {
      var value = payload[key];
      var kind = typeof value;
      if ((kind === "string" || kind === "number" || kind === "boolean") && value !== "") {
        parts.push(key + ": " + scalar(value));
      } else if (Array.isArray(value) && value.length && value.every(function (v) {
        return typeof v === "string" || typeof v === "number";
      })) {
        parts.push(key + ": " + value.map(String).join(", "));
      }
    });
    return parts.join("; ").slice(0, 300);
  }

  function span(className, text) {
    var element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function append(event) {
    if (event.sequence <= lastSequence || document.getElementById("event-" + event.sequence)) {
      return;
    }
    var item = document.createElement("li");
    item.className = "event event-" + event.type + " event-new";
    item.id = "event-" + event.sequence;
    item.dataset.sequence = String(event.sequence);
    item.appendChild(span("event-seq", "#" + event.sequence));
    var time = document.createElement("time");
    time.className = "event-time";
    time.dateTime = event.created_at || "";
    time.textContent = formatTime(event.created_at);
    item.appendChild(document.createTextNode(" "));
    item.appendChild(time);
    item.appendChild(document.createTextNode(" "));
    item.appendChild(span("event-type", event.type));
    item.appendChild(document.createTextNode(" "));
    item.appendChild(span("event-actor", event.actor || ""));
    item.appendChild(document.createTextNode(" "));
    item.appendChild(span("event-summary", summary(event.type, event.payload)));
    timeline.appendChild(item);
    lastSequence = event.sequence;
    timeline.dataset.lastSequence = String(lastSequence);
    if (event.type === "status_changed" && event.payload && event.payload.to && statusBadge) {
      var to = event.payload.to;
      statusBadge.className = "status status-" + to;
      statusBadge.dataset.status = to;
      statusBadge.textContent = LABELS[to] || to;
      say("Status changed to " + (LABELS[to] || to) + ". Reload to see the actions now open.", true);
    }
  }

  /* Fetch every event after the last one shown, page by page; one fetch at a time. */
  function catchUp() {
    if (fetching) {
      fetchAgain = true;
      return;
    }
    fetching = true;
    fetchAgain = false;
    var url = eventsUrl + "?after=" + encodeURIComponent(lastSequence) + "&limit=200";
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (page) {
        (page.results || []).forEach(append);
        if (page.has_more) {
          fetchAgain = true;
        } else {
          var more = document.getElementById("more-events");
          if (more) {
            more.remove();
          }
        }
      })
      .catch(function () {
        say("Could not load new events; retrying when the connection returns.");
      })
      .then(function () {
        fetching = false;
        if (fetchAgain) {
          catchUp();
        }
      });
  }

  function connect() {
    if (!window.WebSocket || !wsPath) {
      return;
    }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + wsPath);
    socket.onopen = function () {
      retryDelay = 1000;
      say("Live: new events appear here as they happen.");
      catchUp(); /* anything that happened while the socket was closed */
    };
    socket.onmessage = function (message) {
      var data;
      try {
        data = JSON.parse(message.data);
      } catch (err) {
        return;
      }
      if (data && data.type === "task.event" && data.data && Number(data.data.task) === taskId &&
          Number(data.data.sequence) > lastSequence) {
        catchUp();
      }
    };
    socket.onclose = function () {
      socket = null;
      say("Connection lost; reconnecting\u2026");
      var delay = retryDelay + Math.floor(Math.random() * 500);
      retryDelay = Math.min(retryDelay * 2, 30000);
      window.clearTimeout(reconnectTimer);
      reconnectTimer = window.setTimeout(connect, delay);
    };
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      catchUp();
    }
  });
  window.addEventListener("online", function () {
    if (!socket) {
      window.clearTimeout(reconnectTimer);
      connect();
    }
  });

  catchUp();
  connect();
}());
