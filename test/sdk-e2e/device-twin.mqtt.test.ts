import { deviceTwinScenarios } from './scenarios/device-twin.ts';

deviceTwinScenarios('Mqtt');
