from speedrun.cli import app

app(prog_name="speedrun")
