pytest_plugins = ["services.devkit.pytest_plugin"]
