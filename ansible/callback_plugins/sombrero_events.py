# Copyright: sombrero contributors. Licensed as the repository.
"""sombrero_events: one JSON line per playbook event, for `sombrero configure`/`build`.

Why a callback of our own: ansible-core ships no JSON-lines callback (the `json` one lives
in the ansible.posix collection, and it prints only at the end). sombrero needs each task
as it starts and ends, to show progress, to time Ansible itself and to record one history
phase per role. The stdout callback stays the default one, so the saved log is the log
operators know. Writes to the file named by $SOMBRERO_ANSIBLE_EVENTS; a no-op when unset.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: sombrero_events
    type: aggregate
    short_description: JSON lines of task starts, results and stats for sombrero
    description:
      - Appends one JSON object per line to the file named by SOMBRERO_ANSIBLE_EVENTS.
    requirements:
      - the SOMBRERO_ANSIBLE_EVENTS environment variable (else nothing is written)
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sombrero_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        path = os.environ.get("SOMBRERO_ANSIBLE_EVENTS")
        self._out = open(path, "a", encoding="utf-8") if path else None
        self._started = {}

    def _emit(self, **event):
        if self._out is None:
            return
        event["time"] = time.time()
        self._out.write(json.dumps(event, default=str) + "\n")
        self._out.flush()

    @classmethod
    def _name(cls, task):
        # get_name() says "role : task"; the role is its own field here.
        name = task.get_name()
        role = cls._role(task)
        prefix = f"{role} : " if role else None
        return name[len(prefix):] if prefix and name.startswith(prefix) else name

    @staticmethod
    def _role(task):
        role = getattr(task, "_role", None)
        return role.get_name(include_role_fqcn=False) if role else None

    def v2_playbook_on_start(self, playbook):
        self._emit(event="playbook_start", playbook=playbook._file_name)

    def v2_playbook_on_play_start(self, play):
        self._emit(event="play_start", play=play.get_name())

    def _task_start(self, task, handler):
        self._started[task._uuid] = time.time()
        self._emit(
            event="task_start",
            task=self._name(task),
            role=self._role(task),
            handler=handler,
        )

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start(task, False)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_start(task, True)

    def _result(self, result, status):
        task = result._task
        body = result._result
        started = self._started.get(task._uuid)
        message = body.get("msg") or body.get("stderr") or body.get("reason") or ""
        self._emit(
            event="task_result",
            task=self._name(task),
            role=self._role(task),
            host=result._host.get_name(),
            status=status,
            changed=bool(body.get("changed", False)),
            ignored=bool(getattr(task, "ignore_errors", False)) and status == "failed",
            message=str(message)[:2000] if status in ("failed", "unreachable") else "",
            duration=(time.time() - started) if started else None,
        )

    def v2_runner_on_ok(self, result):
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for host in sorted(stats.processed.keys()):
            summary = stats.summarize(host)
            hosts[host] = {
                "ok": summary["ok"],
                "changed": summary["changed"],
                "failed": summary["failures"],
                "unreachable": summary["unreachable"],
                "skipped": summary["skipped"],
                "rescued": summary["rescued"],
                "ignored": summary["ignored"],
            }
        self._emit(event="stats", hosts=hosts)
