module github.com/rump9p/rump9p

go 1.26.8

require (
	github.com/go-viper/mapstructure/v2 v2.4.0 // indirect
	github.com/hugelgupf/p9 v0.4.1 // indirect
	github.com/knadh/koanf/maps v0.1.2 // indirect
	github.com/knadh/koanf/v2 v2.4.1 // indirect
	github.com/mitchellh/copystructure v1.2.0 // indirect
	github.com/mitchellh/reflectwalk v1.0.2 // indirect
)
