"""The demo page served at /demo: static HTML, CSS and JavaScript (serving/routes/demo.py)."""
