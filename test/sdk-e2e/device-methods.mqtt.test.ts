import { deviceMethodScenarios } from './scenarios/device-methods.ts';

deviceMethodScenarios('Mqtt');
