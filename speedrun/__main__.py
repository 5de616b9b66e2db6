from speedrun.cli import run

run()
