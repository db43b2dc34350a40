"""Presenting results to people: terminal tables, CSV timelines, reports. Log content is
attacker-controlled: everything printed goes through ``safe`` first."""
