"""Jobs as the controller records them: ids, typed states, the local state folder, events, root cause."""
