"""``python -m tweetcls``."""

from tweetcls.commands import main

if __name__ == "__main__":
    main()
