"""Standard builder modules: tdx.builders.go, .rust, .dotnet and .c."""
