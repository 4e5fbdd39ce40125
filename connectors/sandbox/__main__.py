"""``python -m connectors.sandbox`` starts every sandbox twin."""

from connectors.sandbox.server import main

main()
