module example.com/corpus

go 1.26

require (
	example.com/fakeparse v1.5.0 // want:vulnerable-dependency
	example.com/other v1.0.0
)
