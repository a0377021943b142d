# The project's two commands. Each does all set-up on a fresh machine.
.PHONY: run test

run:  ## set up, then run the main job
	scripts/setup.sh
	scripts/main.sh

test:  ## set up, then run the whole test suite
	scripts/test.sh
