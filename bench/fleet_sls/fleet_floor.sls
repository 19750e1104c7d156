# Salt's floor for a state.apply: one state that does nothing (bench/fleet.py).
fleet-floor:
  test.succeed_without_changes
