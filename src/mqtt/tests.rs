//! Session tests against a real mosquitto.
