/* Staffer chat: one thread, live.
 *
 * The page renders every message and the state of every run. This script opens the thread's socket
 * (/ws/orgs/<slug>/chat/threads/<id>/) and sends its cursor: the last message id it shows and, per
 * task, the last event sequence folded into the run panels. The socket answers with what follows, read
 * from the database, then streams new items as they are committed. Messages arrive rendered by the
 * server; events are folded here into the run panels by the same rules as agents/chat_state.py. Each
 * message (by id) and each event (by task and sequence) is used once, so reconnects, several tabs and a
 * channel layer that drops messages all end with the same page. Forms post with fetch and still work
 * without JavaScript.
 */
(function () {
  "use strict";

  var dataNode = document.getElementById("chat-data");
  var timeline = document.getElementById("chat-timeline");
  if (!dataNode || !timeline || !window.fetch) {
    return;
  }
  var page = JSON.parse(dataNode.textContent);
  var live = document.getElementById("chat-live");
  var runsBox = document.getElementById("chat-runs");
  var thinkingBar = document.getElementById("chat-thinking");
  var composer = document.getElementById("chat-composer");
  var composerError = document.getElementById("composer-error");

  var cursor = { m: Number(page.cursor.m) || 0, t: {} };
  Object.keys(page.cursor.t || {}).forEach(function (k) { cursor.t[k] = Number(page.cursor.t[k]) || 0; });
  var runs = {};
  (page.runs || []).forEach(function (run) { runs[run.root] = run; });

  var TERMINAL = ["completed", "failed", "cancelled", "skipped"];
  var STATUS_LABELS = {
    pending: "Pending", queued: "Queued", in_progress: "In progress", paused: "Paused", blocked: "Waiting",
    completed: "Done", failed: "Failed", cancelled: "Cancelled", skipped: "Skipped"
  };
  var ROLE_LABELS = { manager: "Manager", employee: "Employee", supervisor: "Supervisor" };

  /* --- small helpers ------------------------------------------------------------------------ */

  function escapeHtml(text) {
    return String(text === undefined || text === null ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#x27;");
  }

  function urlFor(template, taskId, action) {
    var url = template.replace("/tasks/0/", "/tasks/" + taskId + "/");
    return action ? url.replace(/\/retry\/$/, "/" + action + "/") : url;
  }

  function say(text, state) {
    if (!live) { return; }
    live.textContent = text;
    live.className = "live-status" + (state ? " " + state : "");
  }

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = String(html).trim();
    return template.content.firstElementChild;
  }

  function addCsrf(root) {
    /* Cards rendered for the socket have no token field: give their forms one (for a plain submit). */
    if (!root || !root.querySelectorAll) { return; }
    root.querySelectorAll("form[method=post]").forEach(function (form) {
      if (!form.querySelector("input[name=csrfmiddlewaretoken]")) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = "csrfmiddlewaretoken";
        input.value = page.csrf;
        form.appendChild(input);
      }
    });
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 240;
  }

  function toBottom() {
    if (composer && composer.scrollIntoView) {
      composer.scrollIntoView({ block: "end" });
    }
  }

  /* Money as chat_state.py shows it: at most six decimals, no trailing zeros. */
  function units(value) {
    var n = Number(value);
    return isFinite(n) ? Math.round(n * 1e8) : 0;
  }
  function addMoney(total, value) {
    var sum = units(total) + units(value);
    return sum ? trimZeros((sum / 1e8).toFixed(8)) : "0";
  }
  function trimZeros(text) {
    return text.indexOf(".") >= 0 ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
  }
  function showMoney(value) {
    var n = Math.round(Number(value) * 1e6) / 1e6;
    return isFinite(n) && n ? trimZeros(n.toFixed(6)) : "0";
  }

  /* --- the fold (the same rules as RunState.apply in agents/chat_state.py) -------------------- */

  function newRun(root, title) {
    return {
      root: root, title: title || ("Task #" + root), status: "pending", plan_version: 0, steps: [],
      thinking_role: "", thinking: "", waiting: "", iteration: "", current_step: "", phase: "", revision: 0,
      revisions_of: Number(page.revisionsOf) || 3, cost: "0", currency: "USD", cost_final: false
    };
  }

  function findStep(run, id) {
    for (var i = 0; i < run.steps.length; i += 1) {
      if (run.steps[i].id === id) { return run.steps[i]; }
    }
    return null;
  }

  function think(run, role, text) {
    run.thinking_role = role;
    run.thinking = text;
  }

  function applyEvent(run, type, payload, task, stepId) {
    var p = payload && typeof payload === "object" && !Array.isArray(payload) ? payload : {};
    stepId = String(p.step || stepId || "");
    var llm = p.llm;
    if (llm && typeof llm === "object" && !run.cost_final) {
      run.cost = addMoney(run.cost, llm.cost);
      run.currency = String(llm.currency || run.currency);
    }
    var step = stepId ? findStep(run, stepId) : null;
    var title = step ? "\u201c" + step.title + "\u201d" : "the step";
    var isRoot = task === run.root;
    var verdict;
    if (type === "created" && isRoot && !run.steps.length) {
      think(run, "manager", "Manager is planning\u2026");
    } else if (type === "status_changed") {
      var to = String(p.to || "");
      if (isRoot && !stepId) {
        run.status = to;
        if (TERMINAL.indexOf(to) >= 0) {
          think(run, "", "");
          run.waiting = "";
        } else if (to === "in_progress" && !run.steps.length) {
          think(run, "manager", "Manager is planning\u2026");
        }
      } else if (step) {
        step.task = task;
        if (step.status !== "completed" || TERMINAL.indexOf(to) >= 0) {
          step.status = to;
        }
      }
    } else if (type === "agent.plan" || type === "agent.plan_edited") {
      var steps = Array.isArray(p.steps) ? p.steps : [];
      run.plan_version = Number(p.version) || run.plan_version + 1;
      run.steps = steps.filter(function (s) { return s && typeof s === "object"; }).map(function (s) {
        return {
          id: String(s.id || ""), title: String(s.title || s.id || ""), status: "pending", task: null,
          estimate: Number(s.estimate_minutes) || 0, needs_approval: !!s.needs_approval,
          human: s.role === "human", revision: 0
        };
      });
      think(run, "", "");
    } else if (type === "agent.plan_invalid" || type === "agent.plan_blocked" || type === "agent.plan_failed") {
      think(run, "", "");
    } else if (type === "agent.plan_approval_requested") {
      run.waiting = "Waiting for approval of plan v" + (p.version || run.plan_version);
      think(run, "", "");
    } else if (type === "agent.plan_approved") {
      run.waiting = "";
      think(run, "manager", "Manager is starting the steps\u2026");
    } else if (type === "agent.steps_started") {
      var subtasks = p.subtasks && typeof p.subtasks === "object" ? p.subtasks : {};
      Object.keys(subtasks).forEach(function (sid) {
        var found = findStep(run, sid);
        if (found && typeof subtasks[sid] === "number") { found.task = subtasks[sid]; }
      });
      think(run, "", "");
    } else if (type === "agent.replan") {
      think(run, "manager", "Manager is re-planning\u2026");
    } else if (type === "agent.step_started") {
      var revision = Number(p.revision) || 1;
      if (step) {
        step.status = "in_progress";
        step.revision = revision;
      }
      run.current_step = stepId;
      run.revision = revision;
      run.phase = revision > 1 ? "revising after review" : "working";
      think(run, "employee", "Employee is " + (revision > 1 ? "revising" : "working on") + " " + title + "\u2026");
    } else if (type === "agent.iteration") {
      var calls = Array.isArray(p.tool_calls) ? p.tool_calls : [];
      if (calls.length) {
        think(run, "employee", "Employee is calling " + calls.map(String).join(", ") + "\u2026");
      } else {
        think(run, "employee", "Employee is writing the report\u2026");
      }
    } else if (type === "agent.step_output") {
      run.current_step = stepId || run.current_step;
      run.phase = "in review";
      think(run, "supervisor", "Supervisor is reviewing " + title + "\u2026");
    } else if (type === "agent.verdict") {
      verdict = String(p.verdict || "");
      run.phase = { accept: "accepted", revise: "sent back for revision", escalate: "escalated to a person" }[verdict] ||
        verdict;
      think(run, "", "");
    } else if (type === "agent.revision") {
      run.revision = Number(p.revision) || run.revision + 1;
      run.revisions_of = Number(p.of) || run.revisions_of;
      run.current_step = stepId || run.current_step;
      run.phase = "revising after review";
      if (step) { step.revision = run.revision; }
      think(run, "employee", "Employee is revising " + title + "\u2026");
    } else if (type === "agent.approval_requested") {
      run.waiting = step ? "Waiting for approval of " + title : "Waiting for an approval";
      think(run, "", "");
    } else if (type === "agent.approved" || type === "agent.approval_refused") {
      run.waiting = "";
    } else if (type === "agent.step_completed") {
      if (step) { step.status = "completed"; }
      think(run, "", "");
    } else if (type === "agent.clarification_requested") {
      run.waiting = "Waiting for your answer";
      think(run, "", "");
    } else if (type === "agent.clarification_answered") {
      run.waiting = "";
    } else if (type === "agent.summary") {
      think(run, "", "");
    } else if (type === "agent.cost") {
      if (p.llm_cost !== undefined && p.llm_cost !== null) {
        run.cost = addMoney("0", p.llm_cost);
        run.cost_final = true;
      }
    }
    if (run.revision) {
      var suffix = run.phase && run.phase !== "working" ? ": " + run.phase : "";
      run.iteration = "Iteration " + run.revision + "/" + run.revisions_of + suffix;
    }
  }

  /* --- drawing a run panel (the same markup as templates/chat/_run.html) ---------------------- */

  function done(run) {
    return run.steps.filter(function (s) { return s.status === "completed"; }).length;
  }

  function progressText(run) {
    var finished = TERMINAL.indexOf(run.status) >= 0;
    if (!run.steps.length) {
      return finished ? (STATUS_LABELS[run.status] || run.status) : "Planning";
    }
    var text = done(run) + " of " + run.steps.length + " steps done";
    var left = 0;
    run.steps.forEach(function (s) { if (TERMINAL.indexOf(s.status) < 0) { left += Number(s.estimate) || 0; } });
    if (left > 0 && !finished) {
      text += " \u00b7 about " + Math.max(1, Math.round(left)) + " min left";
    }
    return text;
  }

  function hiddenAttr(empty) {
    return empty ? " hidden" : "";
  }

  function runHtml(run) {
    var finished = TERMINAL.indexOf(run.status) >= 0;
    var csrf = '<input type="hidden" name="csrfmiddlewaretoken" value="' + escapeHtml(page.csrf) + '">';
    var html = '<section class="run-card runcard-' + escapeHtml(run.status) + '" id="run-' + run.root + '" data-root="' +
      run.root + '" aria-labelledby="run-' + run.root + '-title">';
    html += '<h2 class="run-title" id="run-' + run.root + '-title"><span class="run-number">#' + run.root +
      "</span> " + escapeHtml(run.title) + "</h2>";
    html += '<p class="run-line"><span class="status status-' + escapeHtml(run.status) + '" data-field="status">' +
      escapeHtml(STATUS_LABELS[run.status] || run.status) + '</span> <span class="run-cost" data-field="cost">' +
      "Cost so far: " + escapeHtml(showMoney(run.cost)) + " " + escapeHtml(run.currency) + "</span></p>";
    html += '<div class="run-progress"><progress max="' + (run.steps.length || 1) + '" value="' + done(run) +
      '" aria-label="Steps done">' + done(run) + " of " + run.steps.length + "</progress>" +
      '<p class="progress-text" data-field="progress">' + escapeHtml(progressText(run)) + "</p></div>";
    html += '<p class="iteration" data-field="iteration"' + hiddenAttr(!run.iteration || finished) + ">" +
      escapeHtml(run.iteration) + "</p>";
    html += '<p class="thinking role-' + escapeHtml(run.thinking_role || "none") + '" data-field="thinking"' +
      hiddenAttr(!run.thinking) + ">" + escapeHtml(run.thinking) + "</p>";
    html += '<p class="waiting" data-field="waiting"' + hiddenAttr(!run.waiting) + ">" + escapeHtml(run.waiting) +
      "</p>";
    if (run.steps.length) {
      html += '<ol class="checklist" aria-label="Plan v' + run.plan_version + '">';
      run.steps.forEach(function (s) {
        html += '<li class="step step-' + escapeHtml(s.status) + '" data-step="' + escapeHtml(s.id) +
          '"><span class="step-mark" aria-hidden="true"></span><span class="step-title">' + escapeHtml(s.title) +
          '</span> <span class="step-status">' + escapeHtml(STATUS_LABELS[s.status] || s.status) + "</span>";
        if (s.revision > 1) {
          html += ' <span class="step-revision">revision ' + s.revision + "</span>";
        }
        html += "</li>";
      });
      html += "</ol>";
    }
    html += '<div class="quick-actions" role="group" aria-label="Quick actions for #' + run.root + '">';
    html += '<a class="button secondary small js-status" href="' + escapeHtml(urlFor(page.statusUrl, run.root)) +
      '">Check status</a>';
    if (page.canReadTasks) {
      html += '<a class="button secondary small" href="' + escapeHtml(urlFor(page.taskUrl, run.root)) +
        '">View logs</a>';
    }
    if (page.canExecute) {
      html += '<form method="post" class="inline js-action" data-action="retry" action="' +
        escapeHtml(urlFor(page.actionUrl, run.root, "retry")) + '"' + hiddenAttr(run.status !== "failed") + ">" +
        csrf + '<button type="submit" class="small">Retry</button></form>';
    }
    if (page.canWrite) {
      html += '<form method="post" class="inline js-action" data-action="cancel" action="' +
        escapeHtml(urlFor(page.actionUrl, run.root, "cancel")) + '"' + hiddenAttr(finished) + ">" + csrf +
        '<button type="submit" class="small danger">Cancel</button></form>';
    }
    html += "</div></section>";
    return html;
  }

  var dirty = {};
  var drawScheduled = false;

  function draw() {
    drawScheduled = false;
    Object.keys(dirty).forEach(function (root) {
      var run = runs[root];
      var node = fragment(runHtml(run));
      var old = document.getElementById("run-" + root);
      if (old) {
        old.replaceWith(node);
      } else if (runsBox) {
        var empty = document.getElementById("no-runs");
        if (empty) { empty.remove(); }
        runsBox.insertBefore(node, runsBox.firstChild);
      }
    });
    dirty = {};
    drawThinking();
  }

  function redraw(root) {
    dirty[root] = true;
    if (!drawScheduled) {
      drawScheduled = true;
      window.requestAnimationFrame(draw);
    }
  }

  function drawThinking() {
    if (!thinkingBar) { return; }
    var roots = Object.keys(runs).map(Number).sort(function (a, b) { return b - a; });
    for (var i = 0; i < roots.length; i += 1) {
      var run = runs[roots[i]];
      if (run.thinking && TERMINAL.indexOf(run.status) < 0) {
        thinkingBar.className = "thinking-bar role-" + run.thinking_role;
        thinkingBar.textContent = run.thinking;
        thinkingBar.hidden = false;
        return;
      }
    }
    thinkingBar.hidden = true;
    thinkingBar.textContent = "";
  }

  /* --- items from the socket -------------------------------------------------------------------- */

  function onMessage(item) {
    if (typeof item.id !== "number" || document.getElementById("msg-" + item.id)) {
      return;
    }
    var node = fragment(item.html);
    if (!node) { return; }
    var follow = nearBottom();
    node.classList.add("msg-new");
    addCsrf(node);
    var before = null;
    var children = timeline.children;
    for (var i = children.length - 1; i >= 0; i -= 1) {
      if (Number(children[i].dataset.id) > item.id) {
        before = children[i];
      } else {
        break;
      }
    }
    timeline.insertBefore(node, before);
    if (item.id > cursor.m) { cursor.m = item.id; }
    if (follow) { toBottom(); }
  }

  function onEvent(item) {
    var key = String(item.task);
    if (item.sequence <= (cursor.t[key] || 0)) {
      return; /* folded already */
    }
    cursor.t[key] = item.sequence;
    var run = runs[item.root];
    if (!run) {
      run = newRun(item.root, item.root_title);
      runs[item.root] = run;
    }
    applyEvent(run, item.event, item.payload, item.task, item.step);
    redraw(item.root);
  }

  function onApproval(item) {
    var old = document.getElementById("approval-" + item.id);
    if (!old) { return; }
    var node = fragment(item.html);
    addCsrf(node);
    old.replaceWith(node);
  }

  /* --- the socket ------------------------------------------------------------------------------- */

  var socket = null;
  var retryDelay = 1000;
  var retryTimer = null;
  var gone = false;

  function resume() {
    if (socket && socket.readyState === 1) {
      socket.send(JSON.stringify({ type: "resume", cursor: cursor }));
    }
  }

  function connect() {
    if (!window.WebSocket || gone) {
      return;
    }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + page.ws);
    socket.onopen = function () {
      retryDelay = 1000;
      say("Catching up\u2026", "down");
      resume();
    };
    socket.onmessage = function (message) {
      var item;
      try {
        item = JSON.parse(message.data);
      } catch (err) {
        return;
      }
      if (item.type === "message") {
        onMessage(item);
      } else if (item.type === "event") {
        onEvent(item);
      } else if (item.type === "approval") {
        onApproval(item);
      } else if (item.type === "synced") {
        say("Live", "live");
      }
    };
    socket.onclose = function (event) {
      socket = null;
      if (event.code === 4403 || event.code === 4404) {
        gone = true;
        say("You no longer have access to this conversation.", "down");
        return;
      }
      say("Connection lost; reconnecting\u2026", "down");
      var delay = retryDelay + Math.floor(Math.random() * 400);
      retryDelay = Math.min(retryDelay * 2, 15000);
      window.clearTimeout(retryTimer);
      retryTimer = window.setTimeout(connect, delay);
    };
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { resume(); }
  });
  window.addEventListener("online", function () {
    if (!socket) {
      window.clearTimeout(retryTimer);
      connect();
    }
  });

  /* --- forms, sent with fetch ------------------------------------------------------------------- */

  function post(form) {
    return fetch(form.action || window.location.href, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": page.csrf },
      body: new FormData(form)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        return { ok: response.ok, status: response.status, body: body };
      });
    });
  }

  function showError(node, text) {
    if (!node) { return; }
    node.textContent = text || "";
    node.hidden = !text;
  }

  function sendComposer() {
    var text = composer.elements.content.value.trim();
    if (!text) {
      showError(composerError, "Write a message.");
      composer.elements.content.focus();
      return;
    }
    var button = composer.querySelector("button[type=submit]");
    button.disabled = true;
    post(composer).then(function (result) {
      if (result.ok) {
        composer.elements.content.value = "";
        showError(composerError, "");
        if (result.body && result.body.type === "message") {
          onMessage(result.body);
          toBottom();
        }
      } else {
        showError(composerError, (result.body && result.body.error) || "The message could not be sent (" +
          result.status + ").");
      }
    }).catch(function () {
      showError(composerError, "The message could not be sent: no connection.");
    }).then(function () {
      button.disabled = false;
      composer.elements.content.focus();
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form === composer) {
      event.preventDefault();
      sendComposer();
      return;
    }
    if (form.classList.contains("js-decide")) {
      event.preventDefault();
      var card = form.closest(".approval-card");
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      post(form).then(function (result) {
        if (result.body && result.body.html) {
          onApproval(result.body);
          var fresh = document.getElementById("approval-" + result.body.id);
          if (fresh && result.body.error) {
            showError(fresh.querySelector(".decide-error"), result.body.error);
          }
        } else if (card) {
          showError(card.querySelector(".decide-error"), "The decision could not be sent (" + result.status + ").");
        }
      }).catch(function () {
        if (card) { showError(card.querySelector(".decide-error"), "The decision could not be sent: no connection."); }
      }).then(function () {
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      });
      return;
    }
    if (form.classList.contains("js-answer")) {
      event.preventDefault();
      var error = form.querySelector(".form-error");
      post(form).then(function (result) {
        if (result.ok && result.body && result.body.type === "message") {
          onMessage(result.body);
          form.remove();
          toBottom();
        } else {
          showError(error, (result.body && result.body.error) || "The answer could not be sent (" + result.status + ").");
        }
      }).catch(function () {
        showError(error, "The answer could not be sent: no connection.");
      });
      return;
    }
    if (form.classList.contains("js-action")) {
      event.preventDefault();
      post(form).then(function (result) {
        if (!result.ok) {
          window.alert((result.body && result.body.error) || "That did not work (" + result.status + ").");
        }
      });
    }
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.js-status") : null;
    if (!link) { return; }
    event.preventDefault();
    fetch(link.href, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (!body || !body.run) { return; }
        runs[body.run.root] = body.run;
        Object.keys(body.cursor.t || {}).forEach(function (k) {
          cursor.t[k] = Math.max(cursor.t[k] || 0, Number(body.cursor.t[k]) || 0);
        });
        redraw(body.run.root);
        resume();
      });
  });

  if (composer) {
    composer.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.target.name === "content") {
        event.preventDefault();
        sendComposer();
      }
    });
  }

  addCsrf(document);
  Object.keys(runs).forEach(redraw);
  if (!window.location.hash) { toBottom(); }
  connect();
}());
