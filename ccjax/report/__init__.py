"""What a run writes under <workdir>/report/ beyond the figures: the browsable page (page.py, html.py,
thumbnails.py) and the verdicts it and the commands print (verdicts.py, advice.py)."""
