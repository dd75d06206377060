import Pipeline
import Policy

/// The GPIO backend a configuration names, with its lines: by name, or by chip and offset from
/// `controls.lines` (as a board profile gives them).
public enum GPIOBackends {
    public static func make(_ controls: BodycamConfiguration.Controls, outputs: [OutputLine] = OutputLine.allCases) throws -> GPIOBackend {
        if controls.backend == "simulated" { return try SimulatedGPIO() }
        var places: [String: (String, Int)] = [:]
        for line in controls.lines {
            let parts = line.split(separator: "=")
            let place = parts[1].split(separator: ":")
            places[String(parts[0])] = (String(place[0]), Int(place[1])!)
        }
        func spec(_ name: String, input: Bool) -> LineSpec {
            LineSpec(name: name, chip: places[name]?.0, offset: places[name]?.1,
                     activeLow: name == OutputLine.powerHold.rawValue ? controls.powerHoldActiveLow : controls.activeLow,
                     bias: input ? LineSpec.Bias(rawValue: controls.bias) ?? .asIs : .asIs)
        }
        return try LibgpiodBackend(inputs: Dictionary(uniqueKeysWithValues: Button.allCases.map { ($0, spec($0.rawValue, input: true)) }),
                                   outputs: Dictionary(uniqueKeysWithValues: outputs.map { ($0, spec($0.rawValue, input: false)) }))
    }
}
