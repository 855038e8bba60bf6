"""The standard benchmark behind ``verk-actors bench``; the runtime never imports it."""
