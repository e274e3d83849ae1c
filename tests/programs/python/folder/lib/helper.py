"""Reads the greeting from data/greeting.txt, relative to the working folder."""

import os


def greeting():
    with open(os.path.join("data", "greeting.txt"), encoding="utf-8") as f:
        return f.read().strip()
