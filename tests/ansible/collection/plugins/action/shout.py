# An action plugin (runs on the controller): prints its text in capitals.
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result["msg"] = "SHOUT " + self._task.args.get("text", "").upper()
        return result
