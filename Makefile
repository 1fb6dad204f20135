# Entry points for the dev/CI machines. On a robot, use colcon + ros2 launch (README).
SHELL := /bin/bash
ENV := source scripts/env.sh

.PHONY: setup demo test test-fast bench clean
setup:
	@bash scripts/setup.sh

demo: setup  ## main job on the embedded defaults
	@$(ENV) && emo_demo

test: setup  ## the full suite (CI)
	@$(ENV) && cd emo_perception && python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

test-fast: setup  ## for every edit: no ROS graph, no video encoding (markers: emo_perception/pytest.ini)
	@$(ENV) && cd emo_perception && python -m pytest -q -n 2 --dist loadfile -m "not ros and not media" $(PYTEST_ARGS)

bench: setup
	@$(ENV) && cd bench && for b in bench_*.py; do python $$b; done

clean:
	rm -rf build install log .venv
