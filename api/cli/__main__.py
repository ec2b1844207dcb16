"""`python -m api.cli ...`: how `scamtrail up` and the tests start each process."""

from api.cli import main

main()
