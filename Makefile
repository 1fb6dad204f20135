# Entry points for the dev/CI machines. On a robot, use colcon + ros2 launch (README).
SHELL := /bin/bash
ENV := source scripts/env.sh

.PHONY: setup demo test bench clean
setup:
	@bash scripts/setup.sh

demo: setup  ## main job on the embedded defaults
	@$(ENV) && emo_demo

test: setup
	@$(ENV) && cd emo_perception && python -m pytest -q $(PYTEST_ARGS)

bench: setup
	@$(ENV) && cd bench && for b in bench_*.py; do python $$b; done

clean:
	rm -rf build install log .venv
